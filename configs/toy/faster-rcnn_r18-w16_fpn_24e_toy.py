# Toy student: Faster R-CNN, ResNet-18 at 1/4 width (16 base channels), FPN P2-P6, 256-wide
# box head fcs.
_base_ = [
    '../_base_/models/faster-rcnn_fpn_toy.py',
    '../_base_/datasets/toy_detection.py',
    '../_base_/schedules/toy_det_24e.py',
    '../_base_/default_runtime_det.py',
]
