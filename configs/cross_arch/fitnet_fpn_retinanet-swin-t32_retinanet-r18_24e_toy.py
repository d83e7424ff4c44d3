# FitNet across architectures (baseline for CAKD / ScaleKD): L2 hints on the five FPN levels
# through a 1x1 adapter per level, RetinaNet Swin-t32 teacher -> RetinaNet R18-w16, with the
# weight of the CNN-teacher FitNet config (configs/fitnet/, 0.001).
_base_ = ['../_base_/distill/retinanet-swin-t32_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fitnet', student='neck', teacher='neck',
         projector=dict(type='densekd.ConvProjector', kernel_size=1),
         loss=dict(type='densekd.L2Loss', loss_weight=0.001, reduction='mean')),
])
