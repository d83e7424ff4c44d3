# COCO template: PKD (Cao et al., NeurIPS 2022) on FPN levels 0-3 (P3-P6), weight 10 as the
# official RetinaNet-teacher config (MMRazor pkd_fpn_retina_x101_retina_r50_2x); the fifth level
# is left out as there. RetinaNet X101-64x4d 1x -> R50 2x; the pair and its teacher checkpoint:
# _base_.
_base_ = ['../_base_/distill/retinanet-x101_retinanet-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=10.0)),
])
