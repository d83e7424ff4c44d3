"""Every toy config (plain and distillation) keeps a checkpoint every epoch, or every 250
iterations on iteration schedules, and the last two: a killed toy run can resume."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*_toy*.py'), recursive=True)
             if '_base_' not in p)


def test_there_are_toy_configs():
    assert len(TOY) > 50


@pytest.mark.parametrize('path', TOY, ids=lambda p: osp.relpath(p, REPO))
def test_toy_checkpoint_retention(path):
    cfg = Config.fromfile(path)
    hook = cfg.default_hooks.checkpoint
    assert hook.max_keep_ckpts == 2 and hook.save_last is True
    loop = cfg.train_cfg.get('type', 'EpochBasedTrainLoop')
    if loop == 'EpochBasedTrainLoop':
        assert hook.get('by_epoch', True) is True and hook.interval == 1
    else:
        assert loop == 'IterBasedTrainLoop'
        # 4-16 saves over the 1000-4000 iteration schedules, the last one at the end
        assert hook.by_epoch is False and hook.interval == 250
        assert cfg.train_cfg.max_iters % hook.interval == 0
