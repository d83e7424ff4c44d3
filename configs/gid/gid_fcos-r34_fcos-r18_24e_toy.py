# GID (Dai et al., CVPR 2021), FCOS R34-w32 -> R18-w16, toy set: K=10 general instances per
# image (paper GI score max_c |P_t - P_s| on the sigmoid class scores, centerness not used;
# per-level top-k, NMS 0.3), feature loss 5e-3, relation loss 40 (per image), response
# losses 0.1 / 0.1 at the points FCOS's own get_targets assigns to the GIs (the author
# code's config.py weights).
# finest_scale 14 instead of mmdet's 56: the toy FCOS regress ranges are a quarter of
# mmdet's (16/32/64/128 vs 64/128/256/512), so this keeps mmdet's box-size-to-level rule at
# the same place relative to them (toy train objects then pool from P3 64 %, P4 35 %, P5 2 %,
# close to the levels the toy FCOS head assigns them to, 68 / 32 %). The author code's rule
# (the default, finest_scale=None) scaled the same way would be 28, one level coarser.
_base_ = ['../_base_/distill/fcos-r34_fcos-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.GeneralInstanceDistill', name='gid', head='fcos', finest_scale=14,
         selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10,
                       nms_iou=0.3, score_mode='paper')),
])
