# COCO template: FitNet-style L2 hints (Romero et al., ICLR 2015) on the five FPN levels
# (P3-P7), 1x1 conv adapter per level, L2 weight 0.001 (mean over elements) as the toy FitNet
# configs; no detection FitNet reference exists and the weight is untuned on COCO. FCOS
# X101-64x4d ms 2x -> R50-caffe 1x; the pair and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/fcos-x101_fcos-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fitnet', student='neck', teacher='neck',
         projector=dict(type='densekd.ConvProjector', kernel_size=1),
         loss=dict(type='densekd.L2Loss', loss_weight=0.001, reduction='mean')),
])
