# COCO template: PKD (Cao et al., NeurIPS 2022) on FPN levels 0-3 (P3-P6), weight 10 as the
# official FCOS-teacher config (MMRazor pkd_fpn_fcos_x101_retina_r50_1x); the fifth level is
# left out as there. FCOS X101-64x4d ms 2x -> R50-caffe 1x; the pair and its teacher checkpoint:
# _base_.
_base_ = ['../_base_/distill/fcos-x101_fcos-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=10.0)),
])
