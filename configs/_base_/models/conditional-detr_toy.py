# Conditional DETR for 128 px toy images: mmdet's structure at toy size -- ResNet-18 at 1/4
# width, one level (C4, stride 16: 8x8 tokens; mmdet uses C5, whose 4x4 grid is too coarse
# here), 2 encoder + 3 decoder layers, 30 queries, 5 classes; no pretrained weights.
# Embeddings stay 256-d: mmdet 3.3's ConditionalDetrTransformerDecoder hard-codes a 256-d sine
# embedding of the reference points. FFNs are narrow (512). The toy teacher config deepens it.
embed_dims = 256
model = dict(
    type='ConditionalDETR',
    num_queries=30,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='ChannelMapper',
        in_channels=[64],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=None,
        num_outs=1),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.1,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2 * embed_dims,
                         num_fcs=2, ffn_drop=0.1, act_cfg=dict(type='ReLU', inplace=True)))),
    decoder=dict(
        num_layers=3,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1,
                               cross_attn=False),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.1,
                                cross_attn=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2 * embed_dims,
                         num_fcs=2, ffn_drop=0.1, act_cfg=dict(type='ReLU', inplace=True)))),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
    bbox_head=dict(
        type='ConditionalDETRHead',
        num_classes=5,
        embed_dims=embed_dims,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))
