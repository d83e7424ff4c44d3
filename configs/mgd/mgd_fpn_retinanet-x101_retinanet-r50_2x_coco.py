# COCO template: MGD (Yang et al., ECCV 2022) on the five FPN levels (P3-P7), alpha_mgd 2e-5,
# mask ratio 0.65 (the official RetinaNet config). RetinaNet X101-64x4d 1x -> R50 2x; the pair
# and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/retinanet-x101_retinanet-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65)),
])
