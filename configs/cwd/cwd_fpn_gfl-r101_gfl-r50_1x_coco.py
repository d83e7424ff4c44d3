# COCO template: CWD (Shu et al., ICCV 2021) on the five FPN levels (P3-P7), tau 1, weight 10
# per level (MMRazor's cwd_fpn_gfl setting). GFL R101 ms 2x -> R50 1x; the pair and its teacher
# checkpoint: _base_.
_base_ = ['../_base_/distill/gfl-r101_gfl-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
])
