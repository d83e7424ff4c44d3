# Pixel-wise KD on the segmentation logits (decode_head.conv_seg), DeepLabV3 R101-d8 -> R18-d8,
# Cityscapes template. tau 1, weight 1 (CIRKD's KD baseline defaults); mean over pixels.
_base_ = ['../_base_/distill/deeplabv3-r101_deeplabv3-r18_80k_cityscapes.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_kd', student='decode_head.conv_seg',
         teacher='decode_head.conv_seg',
         loss=dict(type='densekd.PixelWiseKD', tau=1.0, loss_weight=1.0)),
])
