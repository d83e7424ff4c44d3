"""A quick guard on the distillation step cost (the tight numbers live in benchmarks/).

The bound is loose on purpose (CI machines are noisy): it catches gross overhead in the
step (ratio to the floor >= 1.5) and a teacher that runs further than its taps. That the
teacher runs exactly once per step, never in loss mode, and stops at its last tap is
asserted exactly by call counts in tests/models/test_distillation_model.py.
"""
import contextlib
import warnings

import pytest
import torch

from densekd.models import DistillationModel
from densekd.utils.benchmark import components_step, make_batch, step_functions, time_interleaved

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


MGD = dict(type='densekd.FeatureMimic', name='fpn_mgd', student='neck', teacher='neck',
           loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65))


def _model(det_paths, components):
    student, teacher = det_paths
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                                 components=components).train()


def test_components_variant_replays_the_step_losses(det_paths):
    """The components variant computes, on recorded taps, the losses the distillation
    step computes on the same batch (CWD is deterministic)."""
    model = _model(det_paths, [CWD])
    data = model.data_preprocessor(make_batch(model, 2, 128), True)
    fns = step_functions(model, data, with_components=True)
    replayed = fns['components']()
    assert set(replayed) == {'distill.fpn_cwd.loss_cwd'}
    # CWD has no parameters: the loss has a graph only through the student's maps, which
    # the replay makes leaves that take gradients (the backward into them is timed)
    assert replayed['distill.fpn_cwd.loss_cwd'].requires_grad
    with torch.no_grad():
        step = model.loss(data['inputs'], data['data_samples'])
    torch.testing.assert_close(replayed['distill.fpn_cwd.loss_cwd'].detach(),
                               step['distill.fpn_cwd.loss_cwd'])
    # a second replay gives the same value (no state left from the first)
    torch.testing.assert_close(fns['components']()['distill.fpn_cwd.loss_cwd'].detach(),
                               step['distill.fpn_cwd.loss_cwd'])


def test_components_variant_trains_the_components_only(det_paths):
    """MGD's generation blocks get gradients and an optimiser step in the replay (lr 0.1
    here: they move); student gradients left from the call before are dropped; the timing
    summary gains the method floor."""
    model = _model(det_paths, [MGD])
    data = model.data_preprocessor(make_batch(model, 2, 128), True)
    fns = step_functions(model, data, lr=0.1, with_components=True)
    gen = [p for p in model.components.parameters()]
    before = [p.detach().clone() for p in gen]
    student_param = next(model.student.parameters())
    student_param.grad = torch.ones_like(student_param)
    fns['components']()
    assert gen and all(p.grad is not None and p.grad.abs().sum() > 0 for p in gen)
    assert all(not torch.equal(b, p) for b, p in zip(before, gen))
    assert student_param.grad is None
    res = time_interleaved({k: fns[k] for k in ('student', 'teacher', 'distill',
                                                 'components')}, iters=1, warmup=0)
    assert res['method_floor'] == pytest.approx(
        res['student'] + res['teacher'] + res['components'])
    assert res['method_ratio'] == pytest.approx(res['distill'] / res['method_floor'])


def test_components_variant_skips_components_it_cannot_replay(det_paths):
    """A component that changes the student's forward, or reads state of its own hooks,
    cannot be timed apart: no ``components`` variant."""
    from densekd.models.components import FeatureMimic

    class Armed(FeatureMimic):
        @contextlib.contextmanager
        def student_pass(self):
            yield

    class Hooked(FeatureMimic):
        taps_only = False

    from densekd.models.components import (
        DETRFeatureDistill,
        DETRLogitsDistill,
        DETRQueryPriorDistill,
    )

    # the DETRDistill components read the decoder's inputs through hooks of their own
    assert not any(c.taps_only for c in (DETRFeatureDistill, DETRLogitsDistill,
                                         DETRQueryPriorDistill))
    for cls in (Armed, Hooked):
        model = _model(det_paths, [CWD])
        model.components['fpn_cwd'].__class__ = cls
        data = model.data_preprocessor(make_batch(model, 1, 128), True)
        assert components_step(model, data) is None
        assert 'components' not in step_functions(model, data, with_components=True)


def test_benchmark_cli_writes_method_ratio(tmp_path):
    """``tools/benchmark.py --components`` on a toy config: the JSON holds every variant and
    the ratios as defined (distill over the floor, over the method floor); the markdown
    table has the method-ratio column and the command that produced it."""
    import json
    import os.path as osp
    import subprocess
    import sys

    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    config = osp.join(repo, 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py')
    out_json, out_md = tmp_path / 'r.json', tmp_path / 'r.md'
    subprocess.run([sys.executable, osp.join(repo, 'tools/benchmark.py'), config,
                    '--iters', '1', '--warmup', '0', '--size', '64', '--components',
                    '--json', str(out_json), '--md', str(out_md)],
                   check=True, capture_output=True, text=True, cwd=str(tmp_path))
    (r,) = json.loads(out_json.read_text())
    assert r['ratio'] == pytest.approx(r['distill'] / (r['student'] + r['teacher']))
    assert r['method_ratio'] == pytest.approx(
        r['distill'] / (r['student'] + r['teacher'] + r['components']))
    md = out_md.read_text()
    assert 'ratio distill/(student+teacher+components)' in md
    assert '--components' in md and f'**{r["method_ratio"]:.3f}**' in md


def test_detr_group_floor_student_has_the_group_queries(monkeypatch):
    """benchmarks/detr_group_floor.py's grouped student: the config's student with the
    teacher's queries added (toy Deformable DETR: 30 + 50), nothing else changed."""
    import importlib.util
    import os.path as osp
    import sys

    monkeypatch.setattr(sys, 'path', list(sys.path))  # the script adds tools/ to it

    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'detr_group_floor', osp.join(repo, 'benchmarks/detr_group_floor.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = osp.join(repo, 'configs/detr_distill/'
                      'detr-distill-query_deformable-detr-r34_deformable-detr-r18_50e_toy.py')
    grouped = module.grouped_student(config)
    assert grouped.num_queries == 80
    assert grouped.query_embedding.num_embeddings == 80
    assert grouped.training
    with pytest.raises(SystemExit, match='no densekd.DETRQueryPriorDistill'):
        module.grouped_student(osp.join(repo, 'configs/detr_distill/detr-distill-logits_'
                                        'deformable-detr-r34_deformable-detr-r18_50e_toy.py'))
