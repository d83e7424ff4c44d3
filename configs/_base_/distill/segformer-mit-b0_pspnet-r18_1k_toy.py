# The toy cross-architecture segmentation pair: SegFormer MiT-B0 teacher -> PSPNet R18-w16
# student (dilated, output stride 8). Data, schedule and runtime are the student's; a method
# config adds `model.components`.
_base_ = ['../../toy/pspnet_r18-w16_1k_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../toy/pspnet_r18-w16_1k_toy.py'),
    teacher=dict(
        # the MiT-B0 trained on 8x more toy images (the 512-image one stays below the CNN
        # student, see configs/cross_arch/README.md); same architecture as the 1500i config
        config='{{fileDirname}}/../../toy/segformer_mit-b0_4000i_toy4k.py',
        # written by: python tools/train.py configs/toy/segformer_mit-b0_4000i_toy4k.py
        checkpoint='work_dirs/segformer_mit-b0_4000i_toy4k/iter_4000.pth'),
    components=[])
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
