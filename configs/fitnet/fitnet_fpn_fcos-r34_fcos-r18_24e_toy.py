# FitNet-style L2 hints (Romero et al., ICLR 2015) on the five FPN levels (P3-P7) through a
# 1x1 conv adapter per level (sized automatically), FCOS R34-w32 -> R18-w16, toy set.
# No detection FitNet reference exists; weight 0.001 (mean over elements) as the
# RetinaNet toy FitNet (configs/fitnet/README.md). Both FPNs are 64 wide.
_base_ = ['../_base_/distill/fcos-r34_fcos-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fitnet', student='neck', teacher='neck',
         projector=dict(type='densekd.ConvProjector', kernel_size=1),
         loss=dict(type='densekd.L2Loss', loss_weight=0.001, reduction='mean')),
])
