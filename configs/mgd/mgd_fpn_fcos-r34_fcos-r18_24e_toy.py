# MGD (Yang et al., ECCV 2022) on the five FPN levels (P3-P7), FCOS R34-w32 -> R18-w16, toy set.
# One-stage setting of the official configs (RetinaNet; there is no official
# FCOS config): mask ratio 0.65, alpha_mgd 2e-5 (untuned on the toy set). Both FPNs
# are 64 wide: no align conv.
_base_ = ['../_base_/distill/fcos-r34_fcos-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65)),
])
