# FGD (Yang et al., CVPR 2022) on the five FPN levels (P3-P7), FCOS R34-w32 -> R18-w16, toy set.
# FCOS setting of the official configs: temp 0.8, alpha 1.6e-3, beta 8e-4,
# gamma 8e-4, lambda 8e-6; GT boxes from the batch. Both FPNs are 64 wide: no align.
_base_ = ['../_base_/distill/fcos-r34_fcos-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.8, alpha_fgd=1.6e-3, beta_fgd=8e-4,
                   gamma_fgd=8e-4, lambda_fgd=8e-6)),
])
