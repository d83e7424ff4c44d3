# Toy student: FCOS, ResNet-18 at 1/4 width (16 base channels), 2 head convs.
_base_ = [
    '../_base_/models/fcos_fpn_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_det_24e.py',
    '../_base_/default_runtime_det.py',
]
