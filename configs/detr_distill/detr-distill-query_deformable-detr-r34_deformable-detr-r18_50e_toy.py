# DETRDistill (Chang et al., ICCV 2023), Deformable DETR R34-w32 -> R18-w16, toy set:
# query-prior assignment distillation only (the teacher's queries as an extra group
# in the student's decoder, supervised with the teacher's assignment to GT).
# Method notes and deviations: README.md in this folder.
_base_ = ['../_base_/distill/deformable-detr-r34_deformable-detr-r18_50e_toy.py']

model = dict(components=[
    dict(type='densekd.DETRQueryPriorDistill', name='query'),
])
