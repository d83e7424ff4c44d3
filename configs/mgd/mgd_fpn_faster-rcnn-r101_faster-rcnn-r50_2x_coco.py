# COCO template: MGD (Yang et al., ECCV 2022) on FPN levels 0-3 (P2-P5), alpha_mgd 5e-7, mask
# ratio 0.45 (two-stage setting of the official Faster R-CNN config). Faster R-CNN R101 2x ->
# R50 2x; the pair and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/faster-rcnn-r101_faster-rcnn-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3],
         loss=dict(type='densekd.MGDLoss', loss_weight=5e-7, mask_ratio=0.45)),
])
