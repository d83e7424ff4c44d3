# Toy student: DINO-4scale, ResNet-18 at 1/4 width, 256-d, 2 enc / 3 dec layers, 30 queries
# (+ up to 20 denoising queries in training).
# Schedule (not tuned): 24 epochs (62 iterations each at batch 8; DINO converges faster than
# Deformable DETR: mmdet's DINO recipes are 12-36 epochs), AdamW 4e-4, weight decay 1e-4,
# gradient clip 0.1 (from scratch, so no backbone lr_mult), lr x0.1 at epoch 20.
_base_ = [
    '../_base_/models/dino_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/default_runtime_det.py',
]
max_epochs = 24
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[20],
         gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'sampling_offsets': dict(lr_mult=0.1),
        'reference_points': dict(lr_mult=0.1)
    }))
auto_scale_lr = dict(enable=False, base_batch_size=8)
