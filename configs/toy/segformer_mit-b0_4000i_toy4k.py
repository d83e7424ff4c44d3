# The toy SegFormer MiT-B0 teacher trained on 8x more toy images: the toy generator's first
# 4096 training images (data/toy4k; its first 512 are data/toy's, its val set is data/toy's),
# 4000 iterations at batch 8 (about 8 passes), same AdamW 4e-3, warm-up and poly decay as the
# 1500-iteration config. Evaluated on the standard toy val set. On the 512 toy images the
# from-scratch SegFormer reaches 27.66 mIoU (segformer_mit-b0_1500i_toy.py), far below the
# CNN students; a teacher seeing more data than its student is the usual distillation setting.
_base_ = ['./segformer_mit-b0_1500i_toy.py']
train_dataloader = dict(dataset=dict(data_root='data/toy4k/', toy_params=dict(num_train=4096)))
train_cfg = dict(max_iters=4000, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=50, end=4000, by_epoch=False),
]
