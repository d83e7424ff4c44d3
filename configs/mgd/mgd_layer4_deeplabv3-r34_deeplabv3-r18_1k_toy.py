# MGD on the last backbone stage (128 -> 256 channels through a 1x1 align conv) plus CWD on
# the logits, DeepLabV3 R34-w32 -> R18-w16, toy set. The official MGD segmentation setting:
# alpha_mgd 2e-5, mask ratio 0.75, and 3 x CWD(tau 4) on the decode-head logits.
_base_ = ['../_base_/distill/deeplabv3-r34_deeplabv3-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='c5_mgd', student='backbone.layer4',
         teacher='backbone.layer4',
         projector=dict(type='densekd.ConvProjector', kernel_size=1),
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.75)),
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=4.0, loss_weight=3.0)),
])
