# DETRDistill (Chang et al., ICCV 2023), DINO-4scale R34-w32 -> R18-w16, toy set:
# target-aware feature distillation only (teacher top-100 (query, class) pairs per
# decoder stage, all stages, neck levels, MSE weight 1).
# Method notes and deviations: README.md in this folder.
_base_ = ['../_base_/distill/dino-r34_dino-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.DETRFeatureDistill', name='feature', topk=100, stages=None,
         loss=dict(type='densekd.TargetAwareFeatureLoss', loss_weight=1.0)),
])
