# The toy Swin-t32 RetinaNet teacher on a 3x longer schedule: 72 epochs, AdamW 1e-3 (300-iter
# warm-up, x0.1 at epochs 56 and 68), no drop path. Toy val mAP (seed 0): 0.101 at epoch 24,
# 0.105 at 48, 0.111 at 72 -- vs 0.059 for the 24-epoch config and 0.287 for the R18-w16 CNN
# student: a Swin trained from scratch on the 512 toy images stays far behind the CNNs.
_base_ = ['./retinanet_swin-t32_fpn_24e_toy.py']
model = dict(backbone=dict(drop_path_rate=0.0))
train_cfg = dict(max_epochs=72, val_interval=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=300),
    dict(type='MultiStepLR', begin=0, end=72, by_epoch=True, milestones=[56, 68], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=1e-3))
