# 1000 iterations at batch 8 (about 16 passes over the toy set), AdamW 4e-3 (wd 0.01), 50
# iterations of linear warm-up, then poly decay to 0; gradient norm clipped at 35.
# From scratch on the toy set, mmseg's SGD 0.01 poly recipe (and AdamW 2e-3 without the model
# changes in pspnet_toy.py) leaves the PSPNet student at background everywhere (mIoU 15.1).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=50, end=1000, by_epoch=False),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.004, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
