# Toy teacher: Deformable DETR, ResNet-34 at 1/2 width, 128-d, 3 enc / 3 dec layers,
# 50 queries; the student's data and schedule. Widths and query counts differ from the
# student's on purpose: DETRDistill's matcher, adapters and query projections all run.
_base_ = ['./deformable-detr_r18-w16_50e_toy.py']
embed_dims = 128
model = dict(
    num_queries=50,
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[64, 128, 256], out_channels=embed_dims,
              norm_cfg=dict(type='GN', num_groups=32)),
    encoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    decoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            cross_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=4 * embed_dims))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(embed_dims=embed_dims))
