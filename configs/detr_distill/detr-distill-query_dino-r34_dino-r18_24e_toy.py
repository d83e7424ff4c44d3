# DETRDistill (Chang et al., ICCV 2023), DINO-4scale R34-w32 -> R18-w16, toy set:
# query-prior assignment distillation only (the teacher's queries as an extra group
# in the student's decoder, supervised with the teacher's assignment to GT).
# Method notes and deviations: README.md in this folder.
_base_ = ['../_base_/distill/dino-r34_dino-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.DETRQueryPriorDistill', name='query'),
])
