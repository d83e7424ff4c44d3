# COCO template cross-architecture pair: Swin-T teacher -> RetinaNet R50 1x student.
# mmdet's model zoo has no RetinaNet Swin-T checkpoint, so the teacher is its Mask R-CNN
# Swin-T 1x (42.7 box AP); the components read only its backbone (the teacher stops there),
# so its heads do not matter. Both configs are mmdet's own, unchanged; data, schedule and
# runtime are the student's. Data layout: data/README.md (data/coco/).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'),
    teacher=dict(
        config='mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
        # mmdet model zoo (swin/metafile.yml)
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/swin/'
        'mask_rcnn_swin-t-p4-w7_fpn_1x_coco/'
        'mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth'),
    dry_run_size=(256, 256),
    components=[])
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
