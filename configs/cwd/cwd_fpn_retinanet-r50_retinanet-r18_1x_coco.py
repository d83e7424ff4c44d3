# COCO template: CWD on the five FPN levels, RetinaNet R50 -> R18, 1x (tau 1, weight 10).
# Both FPNs are 256 wide, so no projector. Also the reference setting of the step-cost
# benchmark (tools/benchmark.py, benchmarks/README.md). Data layout: data/README.md.
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py']

model = dict(
    _delete_=True,
    type='densekd.DistillationModel',
    student=dict(config='mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'),
    teacher=dict(
        config='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
        checkpoint='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
        'retinanet_r50_fpn_1x_coco/retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth'),
    dry_run_size=(256, 256),
    components=[
        dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
             loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0)),
    ])
# student-only checkpoints beside each checkpoint; the teacher's score once, before training
custom_hooks = [dict(type='densekd.StudentCheckpointHook'), dict(type='densekd.TeacherEvalHook'),
                dict(type='densekd.FiniteLossHook')]
