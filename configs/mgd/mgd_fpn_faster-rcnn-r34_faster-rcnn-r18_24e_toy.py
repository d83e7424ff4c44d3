# MGD (Yang et al., ECCV 2022) on FPN levels 0-3 (P2-P5), Faster R-CNN R34-w32 -> R18-w16, toy
# set. Two-stage setting of the official Faster R-CNN config: 4 levels, mask ratio 0.45,
# alpha_mgd 5e-7 (untuned on the toy set). Both FPNs are 64 wide: no align conv.
_base_ = ['../_base_/distill/faster-rcnn-r34_faster-rcnn-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3],
         loss=dict(type='densekd.MGDLoss', loss_weight=5e-7, mask_ratio=0.45)),
])
