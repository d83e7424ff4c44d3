# Deformable DETR (single stage, no box refinement, as in DETRDistill) for 128 px toy images:
# mmdet's structure at toy size -- ResNet-18 at 1/4 width (C3-C5: 32/64/128 ch), ChannelMapper
# to 4 levels of 64 ch (strides 8-64: 16x16 ... 2x2 tokens), 2 encoder + 3 decoder layers,
# 64-d embeddings, 30 queries, 5 classes; BN trained, no pretrained weights (no downloads).
# The toy teacher config widens and deepens it.
embed_dims = 64
model = dict(
    type='DeformableDETR',
    num_queries=30,
    num_feature_levels=4,
    with_box_refine=False,
    as_two_stage=False,
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
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='ChannelMapper',
        in_channels=[32, 64, 128],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=16),
        num_outs=4),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims,
                         ffn_drop=0.1))),
    decoder=dict(
        num_layers=3,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.1,
                               batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims,
                         ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=-0.5),
    bbox_head=dict(
        type='DeformableDETRHead',
        num_classes=5,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
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
