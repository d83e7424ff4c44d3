# LAD: CWD on segmentation logits from the label-assisted DeepLabV3 R34-w32 teacher to a plain
# R18-w16 student, toy set. tau=1, weight 5: the setting of
# configs/cwd/cwd_logits_deeplabv3-r34_deeplabv3-r18_1k_toy.py, so the two runs differ only in the
# teacher.
_base_ = ['../_base_/distill/lad_deeplabv3-r34_deeplabv3-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='segmentor.decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
])
