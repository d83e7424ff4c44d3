# CWD on segmentation logits (decode_head.conv_seg), DeepLabV3 R34-w32 -> R18-w16, toy set.
# tau=1, weight 5: MMRazor's cwd_logits_pspnet setting (official code: tau=4, weight 3).
_base_ = ['../_base_/distill/deeplabv3-r34_deeplabv3-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
])
