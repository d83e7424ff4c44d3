# FCN for 128 px toy images: the PSPNet toy model (pspnet_toy.py: ResNetV1c dilated to output
# stride 8, FCN auxiliary head, BN, no dropout, background-down-weighted CE) with mmseg's FCNHead
# as decode head (two 3x3 convs, input concatenated, as mmseg's fcn_r50-d8.py).
_base_ = ['./pspnet_toy.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=128,
        in_index=3,
        channels=32,
        num_convs=2,
        concat_input=True,
        dropout_ratio=0.0,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            class_weight=[0.1, 1.0, 1.0, 1.0, 1.0, 1.0])))
