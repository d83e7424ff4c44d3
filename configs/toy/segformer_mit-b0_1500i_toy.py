# Toy transformer segmentation teacher: SegFormer MiT-B0 (3.7 M parameters in the backbone),
# 64-wide MLP head, trained from scratch for 1500 iterations (the CNN teachers' schedule).
_base_ = [
    '../_base_/models/segformer_mit-b0_toy.py',
    '../_base_/datasets/toy_segmentation.py',
    '../_base_/schedules/toy_seg_1500.py',
    '../_base_/default_runtime_seg.py',
]
# no weight decay on norm layers (as mmseg's SegFormer recipe)
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(
    norm=dict(decay_mult=0.0))))
