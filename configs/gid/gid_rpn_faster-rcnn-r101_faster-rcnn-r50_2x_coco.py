# COCO template: GID (Dai et al., CVPR 2021) for Faster R-CNN R101 2x (mmdet zoo, 39.8) ->
# R50 2x, mmdet's own configs unchanged (the paper's two-stage setting is Faster R-CNN
# R101 -> R50; its Faster R-CNN numbers are not verified here, see configs/gid/README.md).
# GIs from the RPN heads (objectness), K=10, NMS 0.3 per level, top 3000 per level, boxes with
# a side <= 10 px dropped (author code); loss weights 5e-3 / 40 / 0.1 / 0.1 (the author code's
# config.py defaults, see configs/gid/README.md) on FPN P2-P6 and the RPN outputs. RoI levels:
# the default finest_scale=None, the author's detectron2 ROIPooler rule, which on the RPN's
# P2-first pyramid is mmdet's rule at 56 (boxes under 112 px pool from P2).
_base_ = ['../_base_/distill/faster-rcnn-r101_faster-rcnn-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.GeneralInstanceDistill', name='gid', head='rpn',
         selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10,
                       pre_nms_topk=3000, nms_iou=0.3, score_mode='paper', min_size=10)),
])
