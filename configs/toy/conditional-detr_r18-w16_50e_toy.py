# Toy student: Conditional DETR, ResNet-18 at 1/4 width (C4), 256-d, 2 enc / 3 dec layers,
# 30 queries. Schedule: configs/_base_/schedules/toy_detr_50e.py.
_base_ = [
    '../_base_/models/conditional-detr_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_detr_50e.py',
    '../_base_/default_runtime_det.py',
]
