"""The example plugin: a loss registered outside densekd, loaded with custom_imports."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'projects/example_plugin/configs/'
                  'at_backbone_retinanet-r34_retinanet-r18_24e_toy.py')


def test_attention_transfer_hand_computed():
    sys.path.insert(0, REPO)
    from projects.example_plugin.attention_transfer import AttentionTransferLoss

    s = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    t = torch.tensor([0.0, 3.0]).view(1, 1, 1, 2)
    # q_s = (1, 0), q_t = (0, 1) after normalisation: squared distance 2
    assert AttentionTransferLoss(loss_weight=0.5)(s, t).item() == pytest.approx(1.0)
    wide_t = torch.cat([t, t], dim=1)  # channel counts may differ: same attention map
    assert AttentionTransferLoss()(s, wide_t).item() == pytest.approx(2.0)


def test_plugin_config_trains(tmp_path, tiny_config):
    cfg = tiny_config(CONFIG, num_train=8, num_val=4)
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), str(cfg),
                           '--work-dir', str(tmp_path / 'work')], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'distill.backbone_at.loss_at' in out
