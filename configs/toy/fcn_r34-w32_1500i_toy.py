# Toy segmentation teacher: FCN (FCNHead), ResNetV1c-34 at 1/2 width, wider heads,
# 1500 iterations (toy_seg_1500.py), the PSPNet toy recipe.
_base_ = [
    '../_base_/models/fcn_toy.py',
    '../_base_/datasets/toy_segmentation.py',
    '../_base_/schedules/toy_seg_1500.py',
    '../_base_/default_runtime_seg.py',
]
model = dict(
    backbone=dict(depth=34, base_channels=32, stem_channels=32),
    decode_head=dict(in_channels=256, channels=64),
    auxiliary_head=dict(in_channels=128, channels=32))
