# FGD (Yang et al., CVPR 2022) on the five FPN levels (P3-P7), GFL R34-w32 -> R18-w16, toy set.
# GFL setting of the official configs (= RetinaNet's): temp 0.5, alpha 1e-3, beta 5e-4,
# gamma 5e-4, lambda 5e-6; GT boxes from the batch. Both FPNs are 64 wide: no align.
_base_ = ['../_base_/distill/gfl-r34_gfl-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                   gamma_fgd=5e-4, lambda_fgd=5e-6)),
])
