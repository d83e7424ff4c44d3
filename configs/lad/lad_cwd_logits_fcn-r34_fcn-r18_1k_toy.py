# LAD: CWD on segmentation logits from the label-assisted FCN R34-w32 teacher to a plain
# R18-w16 student, toy set. tau=1, weight 5: MMRazor's cwd_logits setting, as the PSPNet and
# DeepLabV3 CWD toy configs (there is no plain-teacher FCN CWD config yet).
_base_ = ['../_base_/distill/lad_fcn-r34_fcn-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='segmentor.decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
])
