"""A quick guard on the distillation step cost (the tight numbers live in benchmarks/).

The bound is loose on purpose (CI machines are noisy): it catches gross overhead in the
step (ratio to the floor >= 1.5) and a teacher that runs further than its taps. That the
teacher runs exactly once per step, never in loss mode, and stops at its last tap is
asserted exactly by call counts in tests/models/test_distillation_model.py.
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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # no oversubscription when other processes share the cores
    try:
        res = time_interleaved(fns, iters=9, warmup=2)
    finally:
        torch.set_num_threads(threads)
    # the fastest round of each variant: interference from other processes only adds time,
    # so minima are stable where medians of a few rounds are not on a busy machine
    best = {k: min(v) for k, v in res['samples'].items()}
    assert best['distill'] / (best['student'] + best['teacher']) < 1.5, best
    # the teacher stops at its neck tap: cheaper than a loss-mode teacher forward
    assert best['teacher'] < best['teacher_loss_mode'], best
