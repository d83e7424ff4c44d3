# ADE20K template cross-architecture pair: UPerNet Swin-T (ImageNet-1k pre-trained, 160k;
# 44.41 mIoU in mmseg's model zoo) teacher -> PSPNet R50-d8 80k student, both mmseg's own
# 512x512 configs, unchanged; data, schedule and runtime are the student's.
# Data layout: data/README.md (data/ade/ADEChallengeData2016).
_base_ = ['mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'),
    teacher=dict(
        config='mmseg::swin/'
        'swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
        # mmseg model zoo (swin/metafile.yaml)
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/swin/'
        'upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K/'
        'upernet_swin_tiny_patch4_window7_512x512_160k_ade20k_pretrain_224x224_1K_'
        '20210531_112542-e380ad3e.pth'),
    dry_run_size=(256, 256),
    components=[])
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
