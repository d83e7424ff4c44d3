"""A quick guard on the distillation step cost (the tight numbers live in benchmarks/).

The bound is loose on purpose (a noisy 2-core machine); it catches gross regressions
such as running the teacher twice or in loss mode, which cost a full teacher forward
plus head and target assignment on top of the floor.
"""
import warnings

import torch

from densekd.models import DistillationModel
from densekd.utils.benchmark import make_batch, step_functions, time_interleaved

CWD = dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
           loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0))


def test_distill_step_close_to_floor(det_paths):
    student, teacher = det_paths
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                                  components=[CWD]).train()
    data = model.data_preprocessor(make_batch(model, 2, 128), True)
    fns = step_functions(model, data, with_loss_mode=True)
    torch.manual_seed(0)
    res = time_interleaved(fns, iters=7, warmup=2)
    assert res['ratio'] < 1.5, res
    # the teacher stops at its neck tap: cheaper than a loss-mode teacher forward
    assert res['teacher'] < res['teacher_loss_mode'], res
