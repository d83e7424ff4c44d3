# CAKD (Liu et al., ACCV 2022), toy detection: RetinaNet Swin-t32 teacher -> RetinaNet R18-w16.
# Student backbone stage 3 (64 ch, stride 16, 8x8 at 128 px) against the teacher's stage 3:
# PCA on the attention of its last block (shifted windows, 4x4 windows, 4 heads; teacher Q/K/V
# from the `qkv` Linear), GL into its stage-3 output (128 ch). Partial replacement p=0.5
# (re-implementations' value). Weights are untuned starting points: with a random teacher the
# PCA term is ~1e-3 and GL ~1 before weighting, the detection loss ~1.3.
_base_ = ['../_base_/distill/retinanet-swin-t32_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.CrossArchDistill', name='cakd', student='backbone', student_level=2,
         teacher_attn='backbone.stages.2.blocks.1.attn.w_msa.qkv',
         teacher_feat='backbone', teacher_level=2,
         pca=dict(p=0.5, replace='matrix', value='relation', loss_weight=100.0),
         gl=dict(group_size=(4, 4), sharing='phase', loss_weight=1.0)),
])
