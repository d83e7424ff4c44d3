# GID (Dai et al., CVPR 2021), GFL R34-w32 -> R18-w16, toy set: K=10 general instances per
# image (paper GI score max_c |P_t - P_s| on the sigmoid quality-class scores; per-level
# top-k, NMS 0.3), feature loss 5e-3, relation loss 40 (per image), response losses
# 0.1 / 0.1 at the anchors GFL's own ATSS assignment gives the GIs (the author code's
# config.py weights; the regression is compared as the expected distances of the
# distributions).
# finest_scale 14 instead of mmdet's 56: the toy GFL anchors are a quarter of mmdet's
# (octave_base_scale 2 vs 8: 16 px on P3, not 64), so this keeps mmdet's box-size-to-level
# rule at the same place relative to the anchors (toy train objects then pool from P3 64 %,
# P4 35 %, P5 2 %; the toy GFL head's best-matching levels are 51 / 41 / 8 %). The author
# code's rule (the default, finest_scale=None) scaled the same way would be 28, one level
# coarser.
_base_ = ['../_base_/distill/gfl-r34_gfl-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.GeneralInstanceDistill', name='gid', head='gfl', finest_scale=14,
         selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10,
                       nms_iou=0.3, score_mode='paper')),
])
