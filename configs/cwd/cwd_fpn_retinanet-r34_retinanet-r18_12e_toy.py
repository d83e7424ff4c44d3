# CWD (Shu et al., ICCV 2021) on all five FPN levels, RetinaNet R34-w32 -> R18-w16, toy set.
# tau=1 and weight 10 per level, as MMRazor's cwd_fpn_retina config (a 5-level sum).
# Data, schedule and runtime are the student's, unchanged.
_base_ = ['../toy/retinanet_r18-w16_fpn_12e_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../toy/retinanet_r18-w16_fpn_12e_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../toy/retinanet_r34-w32_fpn_12e_toy.py',
        # written by: python tools/train.py configs/toy/retinanet_r34-w32_fpn_12e_toy.py
        checkpoint='work_dirs/retinanet_r34-w32_fpn_12e_toy/epoch_12.pth'),
    components=[
        dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
             loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
    ])
custom_hooks = [dict(type='densekd.StudentCheckpointHook')]
