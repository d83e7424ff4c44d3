# Toy teacher: Faster R-CNN, ResNet-34 at 1/2 width (32 base channels), 512-wide box head fcs;
# the same FPN width as the student (64), so FPN maps can be compared without a projector.
_base_ = [
    '../_base_/models/faster-rcnn_fpn_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_det_24e.py',
    '../_base_/default_runtime_det.py',
]
model = dict(
    backbone=dict(depth=34, base_channels=32),
    neck=dict(in_channels=[32, 64, 128, 256]),
    roi_head=dict(bbox_head=dict(fc_out_channels=512)))
