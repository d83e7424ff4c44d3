"""Training is reproducible: the first iterations' losses of the CWD toy config equal stored
values.

The run is the one ``tools/train.py`` makes (``Config.fromfile``, ``setup_launcher``,
mmengine's ``Runner`` with the config's ``randomness=dict(seed=0)``, the toy dataset and its
train pipeline incl. the random flip, AdamW steps), on a tiny toy set (16 training images,
batch 4: one epoch of 4 iterations), one torch thread, and the teacher without a checkpoint:
the seeded runner builds it and ``init_weights_offline`` initialises it, so its weights are
fixed by the seed. A change to the model, the components, the loss, the teacher's
initialisation, the data generator or pipeline, or the seed handling moves these values, and
the test says so when the change is made.

The stored values (``determinism_cwd_toy.json`` beside this file) were recorded with this
test's record mode. When a change moves results on purpose, re-record them and say so in
the commit message:

    DENSEKD_RECORD_DETERMINISM=1 .venv/bin/python -m pytest tests/tools/test_determinism.py

Tolerance: on the machine that recorded the values, two more runs of these iterations in
separate processes gave losses bitwise equal to the stored ones; the same run with two torch
threads instead of one (other reduction splits, as another CPU's kernels may choose)
differed by at most 1.8e-7 relative (about 1.5 float32 epsilon). ``rtol=1e-5`` leaves 50x
room for such summation-order differences on other machines and stays far below what a
change of the computation gives: CWD with ``tau=1.01`` instead of 1 moves the losses by up
to 1.1e-3 relative, seed 1 instead of 0 by up to 0.16.
"""
import json
import os
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CWD_TOY = osp.join(REPO, 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py')
EXPECTED = osp.join(osp.dirname(osp.abspath(__file__)), 'determinism_cwd_toy.json')
RECORD = os.environ.get('DENSEKD_RECORD_DETERMINISM') == '1'
RTOL = 1e-5
# one epoch, no validation (val_interval past the last epoch): only the training losses matter
ONE_EPOCH = 'train_cfg = dict(max_epochs=1, val_interval=2)\n'


def train_losses(config: str, work_dir: str) -> list[dict[str, float]]:
    """Train ``config`` as tools/train.py does, with one torch thread; the logged loss
    values (``loss``, ``student.*``, ``distill.*``) of every iteration."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    import densekd  # noqa: F401
    from densekd.utils.launch import setup_launcher

    class LossRecorder(Hook):
        priority = 'LOWEST'

        def __init__(self) -> None:
            self.losses: list[dict[str, float]] = []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            self.losses.append({k: float(v) for k, v in outputs.items() if 'loss' in k})

    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    setup_launcher(cfg, 'none')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        recorder = LossRecorder()
        runner.register_hook(recorder)
        runner.train()
    finally:
        torch.set_num_threads(threads)
    return recorder.losses


@pytest.mark.filterwarnings('ignore:DistillationModel. the teacher has no checkpoint')
def test_cwd_toy_first_iterations_losses_are_the_stored_ones(tmp_path, tiny_config):
    config = tiny_config(CWD_TOY, num_train=16, num_val=8, batch_size=4,
                         teacher_checkpoint=None, extra=ONE_EPOCH)
    losses = train_losses(config, str(tmp_path / 'work'))
    assert len(losses) == 4 and all('distill.fpn_cwd.loss_cwd' in x for x in losses), losses
    if RECORD:
        with open(EXPECTED, 'w') as f:
            json.dump(dict(
                about='Losses of the first 4 iterations of the CWD toy config (16 toy '
                      'images, batch 4, seed 0, 1 torch thread, seeded random teacher); '
                      'written by DENSEKD_RECORD_DETERMINISM=1 .venv/bin/python -m pytest '
                      'tests/tools/test_determinism.py',
                torch=torch.__version__, losses=losses), f, indent=2)
            f.write('\n')
        pytest.skip(f'recorded {EXPECTED}')
    with open(EXPECTED) as f:
        expected = json.load(f)['losses']
    assert [sorted(x) for x in losses] == [sorted(x) for x in expected]
    for i, (got, want) in enumerate(zip(losses, expected)):
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=RTOL, abs=0), (
                f'iteration {i + 1}, {key}: {got[key]!r} != stored {want[key]!r}; if the '
                'change moves results on purpose, re-record (see this module\'s docstring)')
