# LAD, Cityscapes template: CWD on segmentation logits (decode_head.conv_seg) from the
# label-assisted FCN R101-d8 teacher (lad_teacher_fcn_r101-d8_80k_cityscapes.py, trained first) to
# a plain FCN R18-d8 student. tau 1, weight 5: the MMRazor setting of configs/cwd/ (the reference's
# LAD recipe is tau 4, weight 3: --cfg-options model.components.0.loss.tau=4.0
# model.components.0.loss.loss_weight=3.0).
_base_ = ['mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(
        config='{{fileDirname}}/lad_teacher_fcn_r101-d8_80k_cityscapes.py',
        # written by: bash tools/dist_train.sh
        # configs/lad/lad_teacher_fcn_r101-d8_80k_cityscapes.py 4
        checkpoint='work_dirs/lad_teacher_fcn_r101-d8_80k_cityscapes/iter_80000.pth'),
    components=[
        dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
             teacher='segmentor.decode_head.conv_seg',
             loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=5.0)),
    ])
# student-only checkpoints beside each checkpoint; the (label-assisted) teacher's score once
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]
