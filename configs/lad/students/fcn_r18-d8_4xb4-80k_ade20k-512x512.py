# Plain FCN R18-d8 student for ADE20K (mmseg ships R18-d8 only for Cityscapes): mmseg's R50-d8
# ADE20K config with the R18-d8 deltas of mmseg's fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = ['mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py']
model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
