# COCO template pair: GFL R101 multi-scale 2x teacher (44.7 box AP in mmdet's model zoo) ->
# GFL R50 1x student, the GFL pair of the FGD paper and of MMRazor's CWD configs. Both are
# mmdet's own configs, unchanged; data, schedule and runtime are the student's; a method
# config adds `model.components`. Both FPNs are 256 wide.
# Data layout: data/README.md (mmdet's data/coco/).
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::gfl/gfl_r50_fpn_1x_coco.py'),
    teacher=dict(
        config='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
        # mmdet model zoo (gfl/metafile.yml)
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
        'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth'),
    dry_run_size=(256, 256),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
