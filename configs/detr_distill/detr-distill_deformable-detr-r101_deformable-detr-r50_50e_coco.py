# COCO template: DETRDistill (Chang et al., ICCV 2023) as in the paper, Deformable DETR R101 ->
# R50, 50 epochs (authors' README: 44.1 -> 46.6 AP; their reproduction 46.5). All three
# components with the reference weights: logits distillation on every decoder layer (soft-BCE
# 1, L1 5, GIoU 2), target-aware feature distillation on every decoder stage and the 4 neck
# levels (top-100 pairs, MSE weight 1), query-prior assignment distillation with the student
# head's own loss weights (focal 2, L1 5, GIoU 2) and the teacher's assignment (the paper; the
# reference code re-matches). weighting='teacher_score' is our reading of the paper;
# weighting=None reproduces the reference code. Not included: the reference code's extra
# contrastive (MoCo) loss on decoder embeddings. Notes: README.md in this folder.
_base_ = ['../_base_/distill/deformable-detr-r101_deformable-detr-r50_50e_coco.py']

model = dict(components=[
    dict(type='densekd.DETRLogitsDistill', name='logits', layers='last',
         loss=dict(type='densekd.HungarianDistillLoss', cls_weight=1.0, l1_weight=5.0,
                   giou_weight=2.0, weighting='teacher_score')),
    dict(type='densekd.DETRFeatureDistill', name='feature', topk=100, stages=None,
         loss=dict(type='densekd.TargetAwareFeatureLoss', loss_weight=1.0)),
    dict(type='densekd.DETRQueryPriorDistill', name='query'),
])
