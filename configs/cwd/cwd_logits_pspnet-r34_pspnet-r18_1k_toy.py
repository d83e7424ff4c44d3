# CWD on segmentation logits (decode_head.conv_seg), PSPNet R34-w32 -> R18-w16, toy set.
# tau=1, weight 5: MMRazor's cwd_logits_pspnet setting (official code: tau=4, weight 3).
_base_ = ['../toy/pspnet_r18-w16_1k_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../toy/pspnet_r18-w16_1k_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../toy/pspnet_r34-w32_1k_toy.py',
        # written by: python tools/train.py configs/toy/pspnet_r34-w32_1k_toy.py
        checkpoint='work_dirs/pspnet_r34-w32_1k_toy/iter_1000.pth'),
    components=[
        dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
             teacher='decode_head.conv_seg',
             loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
    ])
custom_hooks = [dict(type='densekd.StudentCheckpointHook')]
