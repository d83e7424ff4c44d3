# The toy Conditional DETR pair: R34-w32 teacher -> R18-w16 student (see configs/toy/conditional-detr_*).
# Data, schedule and runtime are the student's, unchanged; a method config adds
# `model.components`.
_base_ = ['../../toy/conditional-detr_r18-w16_50e_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../toy/conditional-detr_r18-w16_50e_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../../toy/conditional-detr_r34-w32_50e_toy.py',
        # written by: python tools/train.py configs/toy/conditional-detr_r34-w32_50e_toy.py
        checkpoint='work_dirs/conditional-detr_r34-w32_50e_toy/epoch_50.pth'),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
