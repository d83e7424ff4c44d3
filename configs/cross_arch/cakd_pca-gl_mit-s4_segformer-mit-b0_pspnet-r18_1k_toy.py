# CAKD, toy segmentation: SegFormer MiT-B0 teacher -> PSPNet R18-w16 (output stride 8).
# PCA on the global attention of the teacher's last block (stage 4: spatial reduction 1, so
# keys/values are all 4x4 tokens; q/k/v recomputed from its nn.MultiheadAttention on the
# tapped `norm1` tokens), the student's stage-4 map (128 ch, 16x16) average-pooled to 4x4;
# GL from the same student map into the teacher's stage-2 output (64 ch, 16x16).
_base_ = ['../_base_/distill/segformer-mit-b0_pspnet-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.CrossArchDistill', name='cakd', student='backbone', student_level=3,
         teacher_attn='backbone.layers.3.1.1.norm1', attention='mha',
         mha='backbone.layers.3.1.1.attn.attn', teacher_feat='backbone', teacher_level=1,
         align='pool',
         pca=dict(p=0.5, replace='matrix', value='relation', loss_weight=100.0),
         gl=dict(group_size=(4, 4), sharing='phase', loss_weight=1.0)),
])
