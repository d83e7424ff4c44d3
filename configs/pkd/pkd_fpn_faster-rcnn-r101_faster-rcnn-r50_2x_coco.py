# COCO template: PKD (Cao et al., NeurIPS 2022) on FPN levels 0-3 (P2-P5), weight 6 as the
# official Faster R-CNN config (MMRazor pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x); the fifth
# level is left out as there. Faster R-CNN R101 2x -> R50 2x; the pair and its teacher
# checkpoint: _base_.
_base_ = ['../_base_/distill/faster-rcnn-r101_faster-rcnn-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=6.0)),
])
