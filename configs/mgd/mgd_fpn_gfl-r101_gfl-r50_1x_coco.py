# COCO template: MGD (Yang et al., ECCV 2022) on the five FPN levels (P3-P7), alpha_mgd 2e-5,
# mask ratio 0.65 (the official RetinaNet setting; there is no official GFL config). GFL R101 ms
# 2x -> R50 1x; the pair and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/gfl-r101_gfl-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65)),
])
