# COCO template: FGD (Yang et al., CVPR 2022) on the five FPN levels (P3-P7), the official
# configs' GFL setting (= RetinaNet's): temp 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda
# 5e-6; GT boxes from the batch. GFL R101 ms 2x -> R50 1x; the pair and its teacher checkpoint:
# _base_.
_base_ = ['../_base_/distill/gfl-r101_gfl-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                   gamma_fgd=5e-4, lambda_fgd=5e-6)),
])
