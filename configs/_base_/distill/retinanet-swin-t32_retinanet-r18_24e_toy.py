# The toy cross-architecture detection pair: RetinaNet Swin-t32 teacher -> RetinaNet R18-w16
# student. Data, schedule and runtime are the student's; a method config adds components.
_base_ = ['../../toy/retinanet_r18-w16_fpn_24e_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../toy/retinanet_r18-w16_fpn_24e_toy.py'),
    teacher=dict(
        # the Swin-t32 trained on 8x more toy images (the 512-image ones stay below the
        # CNN student, see configs/cross_arch/README.md); same architecture as the 24e config
        config='{{fileDirname}}/../../toy/retinanet_swin-t32_fpn_12e_toy4k.py',
        # written by: python tools/train.py configs/toy/retinanet_swin-t32_fpn_12e_toy4k.py
        checkpoint='work_dirs/retinanet_swin-t32_fpn_12e_toy4k/epoch_12.pth'),
    components=[])
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
