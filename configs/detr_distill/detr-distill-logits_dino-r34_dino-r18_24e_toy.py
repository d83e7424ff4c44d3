# DETRDistill (Chang et al., ICCV 2023), DINO-4scale R34-w32 -> R18-w16, toy set:
# Hungarian-matching logits distillation only (layer by layer, last layers aligned;
# soft-BCE 1 / L1 5 / GIoU 2, teacher-confidence weighting; weighting=None is the reference code).
# Method notes and deviations: README.md in this folder.
_base_ = ['../_base_/distill/dino-r34_dino-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.DETRLogitsDistill', name='logits', layers='last',
         loss=dict(type='densekd.HungarianDistillLoss', cls_weight=1.0, l1_weight=5.0,
                   giou_weight=2.0, weighting='teacher_score')),
])
