# COCO template pair across detector types: two-stage Faster R-CNN R101 2x teacher (39.8 box
# AP in mmdet's model zoo; FPN P2-P6) -> one-stage RetinaNet R50 2x student (FPN P3-P7). The
# PKD paper's heterogeneous teacher is a Swin-S Mask R-CNN (MMRazor
# pkd_fpn_mask_rcnn_swin_retina_r50_2x); this keeps an R-CNN teacher with a ResNet backbone
# and the same two-stage FPN layout. Both are mmdet's own configs, unchanged; data, schedule
# and runtime are the student's; a method config adds `model.components`.
# Data layout: data/README.md (mmdet's data/coco/).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'),
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
