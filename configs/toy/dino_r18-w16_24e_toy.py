# Toy student: DINO-4scale, ResNet-18 at 1/4 width, 256-d, 2 enc / 3 dec layers, 30 queries
# (+ up to 20 denoising queries in training).
# Schedule (not tuned): configs/_base_/schedules/toy_detr_50e.py shortened to 24 epochs
# (DINO converges faster than Deformable DETR: mmdet's DINO recipes are 12-36 epochs),
# validation every 8, lr x0.1 at epoch 20, lr x0.1 on the sampling offsets and reference
# points.
_base_ = [
    '../_base_/models/dino_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_detr_50e.py',
    '../_base_/default_runtime_det.py',
]
max_epochs = 24
train_cfg = dict(max_epochs=max_epochs, val_interval=8)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[20],
         gamma=0.1),
]
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'sampling_offsets': dict(lr_mult=0.1),
    'reference_points': dict(lr_mult=0.1)
}))
