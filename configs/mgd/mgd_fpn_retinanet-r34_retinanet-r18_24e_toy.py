# MGD (Yang et al., ECCV 2022) on the five FPN levels, RetinaNet R34-w32 -> R18-w16, toy set.
# One-stage setting of the official configs: mask ratio 0.65, alpha_mgd 2e-5 (the loss is a
# sum over C*H*W per image, so on these 64-channel, 128 px maps it is ~260x smaller than on
# COCO; configs/mgd/README.md reports the weights tried). Both FPNs are 64 wide: no align.
_base_ = ['../_base_/distill/retinanet-r34_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65)),
])
