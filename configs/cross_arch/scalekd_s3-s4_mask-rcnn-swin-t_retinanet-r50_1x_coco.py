# COCO template: ScaleKD, Swin-T teacher -> RetinaNet R50, the official Swin -> R50 stage
# setting: student stages 3/4 (1024 / 2048 ch) -> teacher stages 3/4 (384 / 768 ch), 3 / 6
# heads, alphas (0.08, 0.06) / (0.08, 0), logit scale 5, teacher parameter perception.
# Global attention over a stride-16 COCO map (~50x84 tokens) is memory-heavy (~0.4 GB of
# attention logits per image and view); num_windows trades it for locality.
_base_ = ['../_base_/distill/mask-rcnn-swin-t_retinanet-r50_1x_coco.py']

model = dict(components=[
    dict(type='densekd.ScaleKDDistill', name='scalekd', student='backbone', teacher='backbone',
         student_levels=[2, 3], teacher_levels=[2, 3], alpha=[(0.08, 0.06), (0.08, 0.0)],
         num_heads=[3, 6], softmax_scale=5.0, perception=True),
])
