# Toy student: Deformable DETR, ResNet-18 at 1/4 width, 64-d, 2 enc / 3 dec layers, 30 queries.
# Schedule: configs/_base_/schedules/toy_detr_50e.py, with mmdet's Deformable DETR lr x0.1 on
# the sampling offsets and reference points.
_base_ = [
    '../_base_/models/deformable-detr_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_detr_50e.py',
    '../_base_/default_runtime_det.py',
]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'sampling_offsets': dict(lr_mult=0.1),
    'reference_points': dict(lr_mult=0.1)
}))
