# Toy teacher: DINO-4scale, ResNet-34 at 1/2 width, 256-d (see the model base), 3 enc / 3 dec
# layers, wider FFNs (1024), 50 matching queries; the student's data and schedule. Query counts
# differ from the student's on purpose (rectangular matching).
_base_ = ['./dino_r18-w16_24e_toy.py']
model = dict(
    num_queries=50,
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[64, 128, 256]),
    encoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))),
    decoder=dict(num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))))
