# DeepLabV3 for 128 px toy images: the PSPNet toy model (pspnet_toy.py: ResNetV1c dilated to
# output stride 8, FCN auxiliary head, BN, no dropout, background-down-weighted CE) with mmseg's
# ASPPHead as decode head. ASPP dilations (1, 3, 6, 9) are mmseg's (1, 12, 24, 36) for 64 x 64
# feature maps (512 px crops at stride 8) scaled to the 16 x 16 maps here.
_base_ = ['./pspnet_toy.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='ASPPHead',
        in_channels=128,
        in_index=3,
        channels=32,
        dilations=(1, 3, 6, 9),
        dropout_ratio=0.0,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            class_weight=[0.1, 1.0, 1.0, 1.0, 1.0, 1.0])))
