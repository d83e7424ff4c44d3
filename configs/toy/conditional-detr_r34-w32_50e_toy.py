# Toy teacher: Conditional DETR, ResNet-34 at 1/2 width (C4), 256-d (see the model base),
# 3 enc / 3 dec layers, wider FFNs (1024), 50 queries; the student's data and schedule.
_base_ = ['./conditional-detr_r18-w16_50e_toy.py']
model = dict(
    num_queries=50,
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[128]),
    encoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))))
