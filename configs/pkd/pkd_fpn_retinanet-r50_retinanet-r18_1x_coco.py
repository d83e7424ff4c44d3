# COCO template: PKD on FPN levels 0-3 (weight 10, as the official RetinaNet-teacher configs),
# RetinaNet R50 -> R18, 1x. Both FPNs are 256 wide, so no projector. The step-cost
# benchmark's reference pair (tools/benchmark.py, benchmarks/README.md); data: data/README.md.
_base_ = ['../cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], loss=dict(type='densekd.PKDLoss', loss_weight=10.0)),
])
