# COCO template: FGD (Yang et al., CVPR 2022) on the five FPN levels (P3-P7), the official
# configs' FCOS setting: temp 0.8, alpha 1.6e-3, beta 8e-4, gamma 8e-4, lambda 8e-6; GT boxes
# from the batch. FCOS X101-64x4d ms 2x -> R50-caffe 1x; the pair and its teacher checkpoint:
# _base_.
_base_ = ['../_base_/distill/fcos-x101_fcos-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.8, alpha_fgd=1.6e-3, beta_fgd=8e-4,
                   gamma_fgd=8e-4, lambda_fgd=8e-6)),
])
