# COCO template: FGD (Yang et al., CVPR 2022) on FPN levels 0-3 (P2-P5), the official configs'
# Faster R-CNN setting: temp 0.5, alpha 5e-5, beta 2.5e-5, gamma 5e-5, lambda 5e-7; GT boxes
# from the batch. Faster R-CNN R101 2x -> R50 2x; the pair and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/faster-rcnn-r101_faster-rcnn-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3],
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=5e-5, beta_fgd=2.5e-5,
                   gamma_fgd=5e-5, lambda_fgd=5e-7)),
])
