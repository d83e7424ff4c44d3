# ScaleKD, toy segmentation: SegFormer MiT-B0 -> PSPNet R18-w16. Student stages 3 and 4
# (64 / 128 ch, both 16x16 at output stride 8) average-pooled to the teacher's stage-3 and
# stage-4 grids (160 ch 8x8, 256 ch 4x4); spatial + frequency mimicking with the official
# alphas. No teacher parameter perception (implemented for Swin stages only).
_base_ = ['../_base_/distill/segformer-mit-b0_pspnet-r18_1k_toy.py']

model = dict(components=[
    dict(type='densekd.ScaleKDDistill', name='scalekd', student='backbone', teacher='backbone',
         student_levels=[2, 3], teacher_levels=[2, 3], alpha=[(0.08, 0.06), (0.08, 0.0)],
         num_heads=[5, 8], softmax_scale=5.0, align='pool'),
])
