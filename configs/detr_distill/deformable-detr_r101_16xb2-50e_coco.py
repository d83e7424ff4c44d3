# Teacher for the COCO template: mmdet's Deformable DETR R50 recipe (single stage, no box
# refinement, 300 queries, 6 + 6 layers, 50 epochs) with a ResNet-101 backbone, the teacher of
# DETRDistill (authors' R101 teacher: 44.8 AP). mmdet's model zoo has no R101 Deformable DETR
# and the authors' checkpoint is in mmdet 2.x layout: train this config (or convert that
# checkpoint's keys) to get the teacher checkpoint.
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']

model = dict(
    backbone=dict(depth=101,
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
