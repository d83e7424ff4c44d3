# Attention transfer (a plugin loss, registered outside densekd) on the last three backbone
# stages, whose channel counts differ between teacher (64/128/256) and student (32/64/128).
_base_ = ['../../../configs/_base_/distill/retinanet-r34_retinanet-r18_24e_toy.py']

custom_imports = dict(imports=['projects.example_plugin.attention_transfer'],
                      allow_failed_imports=False)

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='backbone_at', student='backbone', teacher='backbone',
         levels=[1, 2, 3],
         loss=dict(type='densekd.AttentionTransferLoss', p=2.0, loss_weight=100.0)),
])
