# COCO template: FGD on the five FPN levels (RetinaNet setting: temp 0.5, weights 1e-3,
# 5e-4, 5e-4, 5e-6),
# RetinaNet R50 -> R18, 1x. Both FPNs are 256 wide, so no projector. The step-cost
# benchmark's reference pair (tools/benchmark.py, benchmarks/README.md); data: data/README.md.
_base_ = ['../cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_fgd', student='neck', teacher='neck',
         loss=dict(type='densekd.FGDLoss', temp=0.5, alpha_fgd=1e-3, beta_fgd=5e-4,
                   gamma_fgd=5e-4, lambda_fgd=5e-6)),
])
