"""Every config under configs/ and projects/ parses and its model builds (teacher weights
are not needed: the checkpoint is dropped and the teacher keeps its random init)."""
import glob
import os.path as osp
import sys
import warnings

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import densekd  # noqa: F401
from densekd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    + glob.glob(osp.join(REPO, 'projects', '*', 'configs', '*.py'))
    if '_base_' not in p)


def test_there_are_configs():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    if REPO not in sys.path:  # custom_imports name modules under the repository root
        sys.path.insert(0, REPO)
    cfg = Config.fromfile(path)
    model_cfg = cfg.model
    if str(model_cfg.type).endswith('DistillationModel'):
        model_cfg.teacher.checkpoint = None
    scope = cfg.get('default_scope', 'mmdet')
    with DefaultScope.overwrite_default_scope(scope), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    for key in ('train_dataloader', 'val_dataloader', 'val_evaluator', 'optim_wrapper'):
        assert key in cfg, key


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_distillation_configs_stop_at_a_non_finite_loss(path):
    # every distillation config turns FiniteLossHook on, also those that set custom_hooks
    cfg = Config.fromfile(path)
    if not str(cfg.model.type).endswith('DistillationModel'):
        return
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert 'densekd.FiniteLossHook' in hooks, hooks
