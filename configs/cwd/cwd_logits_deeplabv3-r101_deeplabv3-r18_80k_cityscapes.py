# CWD on the segmentation logits (decode_head.conv_seg), DeepLabV3 R101-d8 -> R18-d8,
# Cityscapes template. tau 1, weight 5: MMRazor's cwd_logits_pspnet setting (PSPNet:
# 74.87 -> 75.54 mIoU reported there); the official code uses tau 4, weight 3.
_base_ = ['../_base_/distill/deeplabv3-r101_deeplabv3-r18_80k_cityscapes.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
])
