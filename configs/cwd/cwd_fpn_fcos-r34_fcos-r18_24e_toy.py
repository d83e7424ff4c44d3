# CWD (Shu et al., ICCV 2021) on the five FPN levels (P3-P7), FCOS R34-w32 -> R18-w16, toy set.
# tau=1 and weight 10 per level, as MMRazor's cwd_fpn_retina / cwd_fpn_gfl (1.x) config (a
# 5-level sum).
_base_ = ['../_base_/distill/fcos-r34_fcos-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
])
