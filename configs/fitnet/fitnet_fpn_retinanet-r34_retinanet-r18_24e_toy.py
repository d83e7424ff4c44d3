# FitNet-style L2 hints (Romero et al., ICLR 2015) on the five FPN levels through a 1x1
# conv adapter per level (sized automatically), RetinaNet R34-w32 -> R18-w16, toy set.
# Weight 0.001: on the toy set weights 1 / 0.01 / 0.001 gave 0.163 / 0.221 / 0.244 mAP, all
# below the 0.287 baseline (configs/fitnet/README.md).
_base_ = ['../_base_/distill/retinanet-r34_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fitnet', student='neck', teacher='neck',
         projector=dict(type='densekd.ConvProjector', kernel_size=1),
         loss=dict(type='densekd.L2Loss', loss_weight=0.001, reduction='mean')),
])
