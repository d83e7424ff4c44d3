# LAD with the reference's student recipe: CWD on segmentation logits, tau=4, weight 3
# (train_baseline.py: L = CE + 3 * CWD(tau 4)), label-assisted FCN R34-w32 -> R18-w16, toy set.
# The reference also weights the student's auxiliary CE by 0.02; here the student keeps its
# config unchanged (aux 0.4).
_base_ = ['../_base_/distill/lad_fcn-r34_fcn-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
         teacher='segmentor.decode_head.conv_seg',
         loss=dict(type='densekd.ChannelWiseDivergence', tau=4.0, loss_weight=3.0)),
])
