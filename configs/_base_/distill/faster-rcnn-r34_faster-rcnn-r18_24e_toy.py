# The toy two-stage pair: Faster R-CNN R34-w32 teacher -> R18-w16 student, FPN P2-P6 on
# both. Data, schedule and runtime are the student's, unchanged; a method config adds
# `model.components`.
_base_ = ['../../toy/faster-rcnn_r18-w16_fpn_24e_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../toy/faster-rcnn_r18-w16_fpn_24e_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../../toy/faster-rcnn_r34-w32_fpn_24e_toy.py',
        # written by: python tools/train.py configs/toy/faster-rcnn_r34-w32_fpn_24e_toy.py
        checkpoint='work_dirs/faster-rcnn_r34-w32_fpn_24e_toy/epoch_24.pth'),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
