# Pixel-wise KD on the segmentation logits (decode_head.conv_seg), DeepLabV3 R34-w32 -> R18-w16,
# toy set. tau 1, weight 1 (CIRKD's KD baseline defaults); KL per pixel, mean over pixels.
_base_ = ['../_base_/distill/deeplabv3-r34_deeplabv3-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_kd', student='decode_head.conv_seg',
         teacher='decode_head.conv_seg',
         loss=dict(type='densekd.PixelWiseKD', tau=1.0, loss_weight=1.0)),
])
