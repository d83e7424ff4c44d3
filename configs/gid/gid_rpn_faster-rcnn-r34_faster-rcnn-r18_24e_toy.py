# GID (Dai et al., CVPR 2021) for a two-stage detector, Faster R-CNN R34-w32 -> R18-w16, toy
# set: general instances selected from the RPN heads (one objectness class; box from the
# more confident RPN, K=10, NMS 0.3), feature and relation losses on FPN P2-P6 RoIAligned at
# the GIs, response losses on the RPN's objectness and deltas at the anchors the student
# RPN's own assigner gives the GIs. Weights 5e-3 / 40 / 0.1 / 0.1 (the author code's
# config.py). finest_scale 28: the toy RPN anchors on P2 are 16 px (mmdet's COCO RPN: 32 px
# with finest_scale 56, which on a P2-first pyramid is also the author code's rule, the
# default).
_base_ = ['../_base_/distill/faster-rcnn-r34_faster-rcnn-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.GeneralInstanceDistill', name='gid', head='rpn', finest_scale=28,
         selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10,
                       nms_iou=0.3, score_mode='paper')),
])
