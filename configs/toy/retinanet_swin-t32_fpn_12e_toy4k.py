# The toy Swin-t32 RetinaNet teacher trained on 8x more toy images: the toy generator's first
# 4096 training images (data/toy4k; its first 512 are data/toy's training set, its val set is
# data/toy's), 12 epochs (6144 iterations at batch 8), AdamW 1e-3 (300-iter warm-up, x0.1 at
# epochs 9 and 11), no drop path. Evaluated on the standard toy val set. Trained from scratch
# on 512 images the Swin overfits (0.101 mAP at 24 epochs, 0.111 at 72, see
# retinanet_swin-t32_fpn_72e_toy.py); a teacher seeing more data than its student is the
# usual distillation setting.
_base_ = ['./retinanet_swin-t32_fpn_72e_toy.py']
train_dataloader = dict(dataset=dict(data_root='data/toy4k/', toy_params=dict(num_train=4096)))
train_cfg = dict(max_epochs=12, val_interval=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=300),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1),
]
