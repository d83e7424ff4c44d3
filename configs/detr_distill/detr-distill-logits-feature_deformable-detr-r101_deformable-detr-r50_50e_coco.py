# COCO template: DETRDistill without its query-prior group (logits and target-aware feature
# distillation only), Deformable DETR R101 -> R50, 50 epochs. For the step-cost benchmark
# (benchmarks/README.md): the query-prior group adds 300 teacher queries to every student
# decoder pass, trained like the student's own; this config measures what the two
# teacher-output parts cost without it. Weights as the three-part template.
_base_ = ['./detr-distill_deformable-detr-r101_deformable-detr-r50_50e_coco.py']

model = dict(components=[
    dict(type='densekd.DETRLogitsDistill', name='logits', layers='last',
         loss=dict(type='densekd.HungarianDistillLoss', cls_weight=1.0, l1_weight=5.0,
                   giou_weight=2.0, weighting='teacher_score')),
    dict(type='densekd.DETRFeatureDistill', name='feature', topk=100, stages=None,
         loss=dict(type='densekd.TargetAwareFeatureLoss', loss_weight=1.0)),
])
