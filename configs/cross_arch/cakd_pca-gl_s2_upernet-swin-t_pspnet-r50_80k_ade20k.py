# ADE20K template: CAKD, UPerNet Swin-T -> PSPNet R50-d8. Student stage 2 (512 ch, stride 8)
# against the teacher's stage 2 (stride 8): PCA on its last block (blocks.1, shifted 7x7
# windows, 6 heads, 192 ch), GL into its stage-2 output. Weights as the toy config (untuned).
_base_ = ['../_base_/distill/upernet-swin-t_pspnet-r50_80k_ade20k.py']

model = dict(components=[
    dict(type='densekd.CrossArchDistill', name='cakd', student='backbone', student_level=1,
         teacher_attn='backbone.stages.1.blocks.1.attn.w_msa.qkv',
         teacher_feat='backbone', teacher_level=1,
         pca=dict(p=0.5, replace='matrix', value='relation', loss_weight=100.0),
         gl=dict(group_size=(4, 4), sharing='phase', loss_weight=1.0)),
])
