# GID ablation, RetinaNet R34-w32 -> R18-w16, toy set: feature loss only (5e-3).
# Selection as the full GID config (K=10, paper score, NMS 0.3); the other losses have
# weight 0 (not computed).
_base_ = ['./gid_retinanet-r34_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.GeneralInstanceDistill', name='gid', head='retina', finest_scale=28,
         relation_weight=0.0, response_cls_weight=0.0, response_reg_weight=0.0,
         selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10,
                       nms_iou=0.3, score_mode='paper')),
])
