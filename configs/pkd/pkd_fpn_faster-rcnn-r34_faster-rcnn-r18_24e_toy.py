# PKD (Cao et al., NeurIPS 2022) on FPN levels 0-3 (P2-P5), Faster R-CNN R34-w32 -> R18-w16, toy
# set. Weight 6 as the official configs with a Faster R-CNN teacher (MMRazor
# pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x); the fifth level is left out as there.
_base_ = ['../_base_/distill/faster-rcnn-r34_faster-rcnn-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=6.0)),
])
