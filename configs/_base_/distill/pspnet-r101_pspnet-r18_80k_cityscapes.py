# Cityscapes template: PSPNet R101-d8 teacher -> PSPNet R18-d8 student, both mmseg's own
# 80k 512x1024 configs, unchanged. Data, schedule and runtime are the student's; a method
# config adds `model.components`. Data layout: data/README.md (mmseg's data/cityscapes/).
_base_ = ['mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(
        config='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
        # mmseg model zoo (pspnet/metafile.yaml)
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_512x1024_80k_cityscapes/pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth'),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
