# FGD (Yang et al., CVPR 2022) on FPN levels 0-3 (P2-P5), Faster R-CNN R34-w32 -> R18-w16, toy
# set. Faster R-CNN setting of the official configs: temp 0.5, alpha 5e-5, beta 2.5e-5, gamma
# 5e-5, lambda 5e-7; GT boxes from the batch. Both FPNs are 64 wide: no align.
_base_ = ['../_base_/distill/faster-rcnn-r34_faster-rcnn-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3],
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=5e-5, beta_fgd=2.5e-5,
                   gamma_fgd=5e-5, lambda_fgd=5e-7)),
])
