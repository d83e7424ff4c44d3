# COCO template: CAKD, Swin-T teacher -> RetinaNet R50. Student stage 3 (1024 ch, stride 16)
# against the teacher's stage 3: PCA on its last block (blocks.5, shifted 7x7 windows,
# 12 heads, 384 ch), GL into its stage-3 output. Weights as the toy config (untuned on COCO).
_base_ = ['../_base_/distill/mask-rcnn-swin-t_retinanet-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.CrossArchDistill', name='cakd', student='backbone', student_level=2,
         teacher_attn='backbone.stages.2.blocks.5.attn.w_msa.qkv',
         teacher_feat='backbone', teacher_level=2,
         pca=dict(p=0.5, replace='matrix', value='relation', loss_weight=100.0),
         gl=dict(group_size=(4, 4), sharing='phase', loss_weight=1.0)),
])
