# Toy segmentation student: PSPNet, ResNetV1c-18 at 1/4 width.
_base_ = [
    '../_base_/models/pspnet_toy.py',
    '../_base_/datasets/toy_segmentation.py',
    '../_base_/schedules/toy_seg_1k.py',
    '../_base_/default_runtime_seg.py',
]
