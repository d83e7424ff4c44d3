# COCO template pair: Deformable DETR R101 teacher -> Deformable DETR R50 student, the
# DETRDistill paper's main pair (teacher 44.8, student 44.1 AP in the authors' README). The
# student is mmdet's own config, unchanged (50 epochs, AdamW 2e-4, weight decay 1e-4, lr x0.1
# at epoch 40, gradient clip 0.1, ImageNet backbone); the teacher config is beside the method
# configs. Data layout: data/README.md (mmdet's data/coco/). mmdet's recipe is 16 GPUs x 2
# images; the authors trained 8 x 2 (set auto_scale_lr.enable=True to scale the lr).
_base_ = ['mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'),
    teacher=dict(
        config='{{fileDirname}}/../../detr_distill/deformable-detr_r101_16xb2-50e_coco.py',
        # written by: tools/dist_train.sh configs/detr_distill/deformable-detr_r101_16xb2-50e_coco.py 16
        checkpoint='work_dirs/deformable-detr_r101_16xb2-50e_coco/epoch_50.pth'),
    dry_run_size=(256, 256),
    components=[])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]  # stops at the first NaN/inf loss
