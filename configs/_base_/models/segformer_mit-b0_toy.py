# SegFormer for 128 px toy images: mmseg's MiT-B0 backbone (embed 32, heads 1-2-5-8, spatial
# reduction 8-4-2-1; token grids 32/16/8/4 at 128 px) and an all-MLP head 64 wide; BN instead
# of SyncBN, no dropout, background down-weighted to 0.1 in the CE loss (as pspnet_toy.py).
norm_cfg = dict(type='BN', requires_grad=True)
class_weight = [0.1, 1.0, 1.0, 1.0, 1.0, 1.0]  # background, then the 5 shapes
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(128, 128)),
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=32,
        num_stages=4,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        init_cfg=None),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[32, 64, 160, 256],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.0,
        num_classes=6,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
            class_weight=class_weight)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
