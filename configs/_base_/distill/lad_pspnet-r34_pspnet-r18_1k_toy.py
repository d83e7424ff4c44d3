# LAD toy pair: label-assisted PSPNet R34-w32 teacher -> plain PSPNet R18-w16 student. Data, schedule
# and runtime are the student's, unchanged; a method config adds `model.components` (teacher
# taps live under `segmentor.`, e.g. segmentor.decode_head.conv_seg). The teacher builds its
# label channel from each batch's gt_sem_seg (deterministic codes, LabelAssistedSegmentor).
_base_ = ['../../toy/pspnet_r18-w16_1k_toy.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='{{fileDirname}}/../../toy/pspnet_r18-w16_1k_toy.py'),
    teacher=dict(
        config='{{fileDirname}}/../../lad/lad_teacher_pspnet_r34-w32_1500i_toy.py',
        # written by: python tools/train.py configs/lad/lad_teacher_pspnet_r34-w32_1500i_toy.py
        checkpoint='work_dirs/lad_teacher_pspnet_r34-w32_1500i_toy/iter_1500.pth'),
    components=[])
# student-only checkpoints beside each checkpoint; the (label-assisted) teacher's score once
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
