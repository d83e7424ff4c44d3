# COCO template pair: Faster R-CNN R101 2x teacher (39.8 box AP in mmdet's model zoo) -> Faster
# R-CNN R50 2x student, the two-stage pair of the PKD paper (MMRazor
# pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x); FGD and MGD used a Cascade Mask R-CNN X101-32x4d
# DCN teacher instead. FPN P2-P6 on both, 256 wide. Both are mmdet's own configs, unchanged;
# data, schedule and runtime are the student's; a method config adds `model.components`. Data
# layout: data/README.md (mmdet's data/coco/).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(
        config='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
        # mmdet model zoo (faster_rcnn/metafile.yml)
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
        'faster_rcnn_r101_fpn_2x_coco/'
        'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'),
    dry_run_size=(256, 256),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
