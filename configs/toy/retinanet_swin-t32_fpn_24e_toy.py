# Toy transformer teacher: RetinaNet with a tiny Swin (embed 32, depths 2-2-2-2, heads 1-2-4-8,
# window 4 -- 32/16/8/4 token grids at 128 px, all multiples of the window), FPN and head as
# the CNN toys. Stage widths 32-64-128-256 equal ResNet-34-w32's, so the FPN is unchanged.
# Trained from scratch like the CNN toys (no pretrained weights, no downloads).
_base_ = [
    '../_base_/models/retinanet_fpn_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_det_24e.py',
    '../_base_/default_runtime_det.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=128,
        embed_dims=32,
        depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8],
        window_size=4,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        with_cp=False,
        convert_weights=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256]))
# no weight decay on norms, relative-position tables (mmdet's Swin recipe)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(
    absolute_pos_embed=dict(decay_mult=0.0),
    relative_position_bias_table=dict(decay_mult=0.0),
    norm=dict(decay_mult=0.0))))
