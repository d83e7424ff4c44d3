# COCO template pair: RetinaNet X101-64x4d 1x teacher (41.0 box AP in mmdet's model zoo) ->
# RetinaNet R50 2x student, the RetinaNet pair of the FGD, MGD and PKD papers (MMRazor uses
# this 1x teacher checkpoint). Both are mmdet's own configs, unchanged; data, schedule and
# runtime are the student's; a method config adds `model.components`. Both FPNs are 256 wide.
# Data layout: data/README.md (mmdet's data/coco/).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'),
    teacher=dict(
        config='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
        # mmdet model zoo (retinanet/metafile.yml)
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_x101_64x4d_fpn_1x_coco/retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth'),
    dry_run_size=(256, 256),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
