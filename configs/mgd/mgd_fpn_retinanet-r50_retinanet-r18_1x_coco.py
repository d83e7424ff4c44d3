# COCO template: MGD on the five FPN levels (alpha 2e-5, mask ratio 0.65: one-stage setting),
# RetinaNet R50 -> R18, 1x. Both FPNs are 256 wide, so no projector. The step-cost
# benchmark's reference pair (tools/benchmark.py, benchmarks/README.md); data: data/README.md.
_base_ = ['../cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
         loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65)),
])
