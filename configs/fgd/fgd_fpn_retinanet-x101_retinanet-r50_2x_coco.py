# COCO template: FGD (Yang et al., CVPR 2022) on the five FPN levels (P3-P7), the official
# configs' RetinaNet setting: temp 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6; GT boxes
# from the batch. RetinaNet X101-64x4d 1x -> R50 2x; the pair and its teacher checkpoint:
# _base_.
_base_ = ['../_base_/distill/retinanet-x101_retinanet-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                   gamma_fgd=5e-4, lambda_fgd=5e-6)),
])
