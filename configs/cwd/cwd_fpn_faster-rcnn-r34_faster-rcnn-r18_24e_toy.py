# CWD (Shu et al., ICCV 2021) on all five FPN levels (P2-P6), Faster R-CNN R34-w32 -> R18-w16,
# toy set. tau=1 and weight 10 per level, as MMRazor's cwd_fpn_frcnn config (a 5-level sum).
_base_ = ['../_base_/distill/faster-rcnn-r34_faster-rcnn-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
])
