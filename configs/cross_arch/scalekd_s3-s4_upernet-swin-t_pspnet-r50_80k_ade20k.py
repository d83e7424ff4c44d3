# ADE20K template: ScaleKD, UPerNet Swin-T -> PSPNet R50-d8. Student stages 3/4 (1024 / 2048
# ch, both stride 8) average-pooled to the teacher's stage-3/4 grids (384 ch stride 16, 768 ch
# stride 32); official alphas, 3 / 6 heads, teacher parameter perception.
_base_ = ['../_base_/distill/upernet-swin-t_pspnet-r50_80k_ade20k.py']

model = dict(components=[
    dict(type='densekd.ScaleKDDistill', name='scalekd', student='backbone', teacher='backbone',
         student_levels=[2, 3], teacher_levels=[2, 3], alpha=[(0.08, 0.06), (0.08, 0.0)],
         num_heads=[3, 6], softmax_scale=5.0, perception=True, align='pool'),
])
