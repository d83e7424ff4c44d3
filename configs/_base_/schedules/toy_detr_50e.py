# Toy DETR schedule (not tuned): 50 epochs (62 iterations each at batch 8), validation every
# 10, 100-iteration warm-up, AdamW 4e-4, weight decay 1e-4, gradient clip 0.1 (mmdet's DETR
# recipe; from scratch, so no backbone lr_mult), lr x0.1 at epoch 40.
max_epochs = 50
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[40],
         gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
