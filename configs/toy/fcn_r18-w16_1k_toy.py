# Toy segmentation student: FCN (FCNHead), ResNetV1c-18 at 1/4 width (recipe of the PSPNet toy).
_base_ = [
    '../_base_/models/fcn_toy.py',
    '../_base_/datasets/toy_segmentation.py',
    '../_base_/schedules/toy_seg_1k.py',
    '../_base_/default_runtime_seg.py',
]
