# PKD (Cao et al., NeurIPS 2022) on FPN levels 0-3 (P3-P6), GFL R34-w32 -> R18-w16, toy set.
# Weight 10 as the official configs with one-stage (RetinaNet/FCOS/RepPoints) teachers;
# there is no official GFL config. The fifth level is left out as there.
_base_ = ['../_base_/distill/gfl-r34_gfl-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=10.0)),
])
