# COCO template pair: FCOS X101-64x4d multi-scale 2x teacher (42.6 box AP in mmdet's model zoo;
# the FCOS teacher of the PKD paper; FGD used FCOS R101 ms 2x) -> FCOS R50-caffe 1x student with
# the center-sampling / norm-on-bbox / centerness-on-reg / GIoU improvements (the FCOS student
# type of the FGD paper). Both are mmdet's own configs, unchanged; data, schedule and runtime
# are the student's; a method config adds `model.components`. Both FPNs are 256 wide. The
# teacher normalises as torchvision (RGB, mean/std), the caffe student as BGR minus mean: the
# batch is re-normalised for the teacher. Data layout: data/README.md (mmdet's data/coco/).
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(
        config='mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py'),
    teacher=dict(
        config='mmdet::fcos/fcos_x101-64x4d_fpn_gn-head_ms-640-800-2x_coco.py',
        # mmdet model zoo (fcos/metafile.yml)
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
        'fcos_x101_64x4d_fpn_gn-head_mstrain_640-800_2x_coco/'
        'fcos_x101_64x4d_fpn_gn-head_mstrain_640-800_2x_coco-ede514a8.pth'),
    dry_run_size=(256, 256),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
