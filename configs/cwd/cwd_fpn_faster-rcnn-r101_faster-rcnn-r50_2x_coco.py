# COCO template: CWD (Shu et al., ICCV 2021) on all five FPN levels (P2-P6), tau 1, weight 10
# per level (MMRazor's cwd_fpn_frcnn setting). Faster R-CNN R101 2x -> R50 2x; the pair and its
# teacher checkpoint: _base_.
_base_ = ['../_base_/distill/faster-rcnn-r101_faster-rcnn-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
])
