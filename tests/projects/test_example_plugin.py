"""The example plugin: a loss registered outside densekd, loaded with custom_imports."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'projects/example_plugin/configs/'
                  'at_backbone_retinanet-r34_retinanet-r18_12e_toy.py')


def test_attention_transfer_hand_computed():
    sys.path.insert(0, REPO)
    from projects.example_plugin.attention_transfer import AttentionTransferLoss

    s = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    t = torch.tensor([0.0, 3.0]).view(1, 1, 1, 2)
    # q_s = (1, 0), q_t = (0, 1) after normalisation: squared distance 2
    assert AttentionTransferLoss(loss_weight=0.5)(s, t).item() == pytest.approx(1.0)
    wide_t = torch.cat([t, t], dim=1)  # channel counts may differ: same attention map
    assert AttentionTransferLoss()(s, wide_t).item() == pytest.approx(2.0)


def test_plugin_config_trains(tmp_path):
    data = str(tmp_path / 'toy') + '/'
    toy = dict(num_train=8, num_val=4)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{CONFIG!r}]
        data_root = {data!r}
        model = dict(teacher=dict(checkpoint=None))
        train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root,
                                                           toy_params={toy!r}))
        val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root,
                                                         toy_params={toy!r}))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1, val_interval=2)
        default_hooks = dict(logger=dict(interval=1))
        """))
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), str(cfg),
                           '--work-dir', str(tmp_path / 'work')], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'distill.backbone_at.loss_at' in out
