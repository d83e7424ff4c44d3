# Attention transfer (a plugin loss, registered outside densekd) on the last three backbone
# stages, whose channel counts differ between teacher (64/128/256) and student (32/64/128).
_base_ = ['../../../configs/toy/retinanet_r18-w16_fpn_12e_toy.py']

custom_imports = dict(imports=['projects.example_plugin.attention_transfer'],
                      allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../../configs/toy/retinanet_r18-w16_fpn_12e_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../../../configs/toy/retinanet_r34-w32_fpn_12e_toy.py',
        checkpoint='work_dirs/retinanet_r34-w32_fpn_12e_toy/epoch_12.pth'),
    components=[
        dict(type='densekd.FeatureMimic', name='backbone_at', student='backbone',
             teacher='backbone', levels=[1, 2, 3],
             loss=dict(type='densekd.AttentionTransferLoss', p=2.0, loss_weight=100.0)),
    ])
custom_hooks = [dict(type='densekd.StudentCheckpointHook')]
