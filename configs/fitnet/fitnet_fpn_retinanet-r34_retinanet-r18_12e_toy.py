# FitNet-style L2 hints (Romero et al., ICLR 2015) on the five FPN levels through a 1x1
# conv adapter per level (sized automatically), RetinaNet R34-w32 -> R18-w16, toy set.
_base_ = ['../toy/retinanet_r18-w16_fpn_12e_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../toy/retinanet_r18-w16_fpn_12e_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../toy/retinanet_r34-w32_fpn_12e_toy.py',
        checkpoint='work_dirs/retinanet_r34-w32_fpn_12e_toy/epoch_12.pth'),
    components=[
        dict(type='densekd.FeatureMimic', name='fpn_fitnet', student='neck', teacher='neck',
             projector=dict(type='densekd.ConvProjector', kernel_size=1),
             loss=dict(type='densekd.L2Loss', loss_weight=1.0, reduction='mean')),
    ])
custom_hooks = [dict(type='densekd.StudentCheckpointHook')]
