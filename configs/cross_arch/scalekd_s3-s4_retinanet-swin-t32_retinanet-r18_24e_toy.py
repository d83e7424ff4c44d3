# ScaleKD (Fan et al., NeurIPS 2024), toy detection: RetinaNet Swin-t32 -> RetinaNet R18-w16.
# Student backbone stages 3 and 4 -> teacher stages 3 and 4 (128 / 256 ch, 8x8 / 4x4 at
# 128 px) through cross-attention projectors (global attention, logit scale 5, heads = the
# teacher's), spatial + frequency mimicking with the official Swin-S -> R50 alphas, and
# teacher parameter perception (stage-3 projections run through the teacher's stage 4 and
# become the stage-4 projectors' queries).
_base_ = ['../_base_/distill/retinanet-swin-t32_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.ScaleKDDistill', name='scalekd', student='backbone', teacher='backbone',
         student_levels=[2, 3], teacher_levels=[2, 3], alpha=[(0.08, 0.06), (0.08, 0.0)],
         num_heads=[4, 8], softmax_scale=5.0, perception=True),
])
