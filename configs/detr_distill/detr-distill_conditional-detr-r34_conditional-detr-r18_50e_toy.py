# DETRDistill (Chang et al., ICCV 2023), Conditional DETR R34-w32 -> R18-w16, toy set:
# all three DETRDistill components: Hungarian-matching logits distillation,
# target-aware feature distillation and query-prior assignment distillation.
# Method notes and deviations: README.md in this folder.
_base_ = ['../_base_/distill/conditional-detr-r34_conditional-detr-r18_50e_toy.py']

model = dict(components=[
    dict(type='densekd.DETRLogitsDistill', name='logits', layers='last',
         loss=dict(type='densekd.HungarianDistillLoss', cls_weight=1.0, l1_weight=5.0,
                   giou_weight=2.0, weighting='teacher_score')),
    dict(type='densekd.DETRFeatureDistill', name='feature', topk=100, stages=None,
         loss=dict(type='densekd.TargetAwareFeatureLoss', loss_weight=1.0)),
    dict(type='densekd.DETRQueryPriorDistill', name='query'),
])
