"""FiniteLossHook stops training at the first non-finite loss, before anything is saved."""
import glob
import os
import os.path as osp
import subprocess
import sys
import textwrap
from collections import OrderedDict
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.logging import MMLogger
from mmengine.runner import get_priority

from densekd.hooks import FiniteLossHook, NonFiniteLossError, StudentCheckpointHook
from densekd.hooks.finite_loss import non_finite_losses
from densekd.registry import HOOKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def fake_runner(tmp_path, it=4, epoch=1):
    return SimpleNamespace(iter=it, epoch=epoch, work_dir=str(tmp_path),
                           logger=MMLogger.get_instance('densekd_test_finite_loss'))


def log_vars(**values):
    return OrderedDict((k.replace('__', '.'), torch.tensor(v)) for k, v in values.items())


def test_the_message_names_the_keys_the_iteration_and_the_epoch(tmp_path):
    outputs = log_vars(loss=float('nan'), loss_cls=0.5, distill__cwd__loss_cwd=float('nan'),
                       distill__fitnet__loss_l2=float('inf'), acc=float('nan'))
    with pytest.raises(FloatingPointError) as err:
        FiniteLossHook().after_train_iter(fake_runner(tmp_path), batch_idx=2, outputs=outputs)
    msg = str(err.value)
    assert isinstance(err.value, NonFiniteLossError)
    # runner.iter 4 and epoch 1 are 0-based: the log's iteration 5, epoch 2; batch 3
    assert 'non-finite loss at iteration 5 (epoch 2, batch 3 of the epoch)' in msg
    assert 'distill.cwd.loss_cwd=nan' in msg and 'distill.fitnet.loss_l2=inf' in msg
    assert 'loss=nan' in msg and 'loss_cls' not in msg
    assert 'acc' not in msg  # not a loss key
    assert str(tmp_path) in msg and 'before this iteration was checkpointed' in msg


def test_finite_losses_and_no_outputs_pass(tmp_path):
    hook, runner = FiniteLossHook(), fake_runner(tmp_path)
    hook.after_train_iter(runner, 0, outputs=log_vars(loss=1.0, loss_cls=1.0, acc=float('nan')))
    hook.after_train_iter(runner, 0, outputs=None)
    hook.after_train_iter(runner, 0, outputs=OrderedDict(loss=2.0))  # python floats


def test_python_floats_and_tensor_elements():
    assert list(non_finite_losses({'loss': 1.0, 'loss_a': float('-inf')})) == ['loss_a']
    assert list(non_finite_losses({'loss_v': torch.tensor([1.0, float('nan')])})) == ['loss_v']
    assert non_finite_losses({'loss': torch.tensor(3.0), 'loss_s': 'x'}) == {}


def test_it_runs_before_the_checkpoint_hooks():
    ours = get_priority(FiniteLossHook.priority)
    assert ours < get_priority(CheckpointHook.priority)
    assert ours < get_priority(StudentCheckpointHook.priority)
    assert ours < get_priority('NORMAL')  # also before any NORMAL-priority saver (EMA)
    assert HOOKS.build(dict(type='densekd.FiniteLossHook')).priority == 'HIGH'


def test_every_distillation_base_config_turns_it_on():
    paths = sorted(glob.glob(osp.join(REPO, 'configs/_base_/distill/*.py')))
    assert len(paths) >= 20
    for path in paths:
        hooks = [h['type'] for h in Config.fromfile(path).custom_hooks]
        assert 'densekd.FiniteLossHook' in hooks, path


PROBE = '''
from mmengine.logging import MessageHub
from torch import nn

from densekd.registry import MODELS


@MODELS.register_module()
class NaNFromIterLoss(nn.Module):
    """MSE that turns NaN from the 0-based training iteration ``start_iter``."""

    loss_name = 'probe'

    def __init__(self, start_iter: int) -> None:
        super().__init__()
        self.start_iter = start_iter

    def forward(self, s, t):
        loss = (s - t.detach()).pow(2).mean()
        it = MessageHub.get_current_instance().get_info('iter')
        return loss * float('nan') if it is not None and it >= self.start_iter else loss
'''


def test_training_stops_at_the_nan_iteration_and_saves_nothing_from_it(tmp_path, tiny_config):
    (tmp_path / 'nan_probe.py').write_text(PROBE)
    base = osp.join(REPO, 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py')
    extra = """
        custom_imports = dict(imports=['nan_probe'], allow_failed_imports=False)
        model = dict(teacher=dict(checkpoint=None), components=[
            dict(type='densekd.FeatureMimic', name='probe', student='neck', teacher='neck',
                 levels=[0], projector=dict(type='densekd.ConvProjector'),
                 loss=dict(type='densekd.NaNFromIterLoss', start_iter=1))])
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval=1, by_epoch=False))
        """
    cfg = tiny_config(base, num_train=8, num_val=4, batch_size=2, extra=textwrap.dedent(extra))
    work = str(tmp_path / 'work')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, str(tmp_path)]))
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg,
                           '--work-dir', work], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert 'NonFiniteLossError: FiniteLossHook: non-finite loss at iteration 2 ' \
           '(epoch 1, batch 2 of the epoch)' in out, out[-3000:]
    assert 'distill.probe.loss_probe=nan' in out
    # iteration 1 was finite and saved (checkpoint every iteration); iteration 2 was not
    saved = sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')))
    assert saved == ['iter_1.pth', 'iter_1_student.pth'], saved
