"""tools/op_counter.py and tools/census.py: the op / sync counter on hand-counted functions,
the baseline check, and the CI guard: one toy config per method family re-counted against
benchmarks/census_baseline.json (added host syncs may not rise; added kernel ops may grow by
at most 10% + 5)."""
import importlib
import importlib.util
import json
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASELINE = osp.join(REPO, 'benchmarks/census_baseline.json')

spec = importlib.util.spec_from_file_location('densekd_census', osp.join(REPO, 'tools/census.py'))
census = importlib.util.module_from_spec(spec)
spec.loader.exec_module(census)
counter = importlib.import_module('op_counter')  # tools/, put on sys.path by census

#: One config per method family, counted at the baseline's batch and size.
FAMILIES = {
    'FitNet': 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'CWD': 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'MGD': 'configs/mgd/mgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'PKD': 'configs/pkd/pkd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'FGD': 'configs/fgd/fgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'GID': 'configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py',
    'GID-RPN': 'configs/gid/gid_rpn_faster-rcnn-r34_faster-rcnn-r18_24e_toy.py',
    'CAKD': 'configs/cross_arch/cakd_pca-gl_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py',
    'ScaleKD': 'configs/cross_arch/scalekd_s3-s4_retinanet-swin-t32_retinanet-r18_24e_toy.py',
    'DETRDistill':
        'configs/detr_distill/detr-distill_deformable-detr-r34_deformable-detr-r18_50e_toy.py',
    'LAD': 'configs/lad/lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py',
    'pixel KD': 'configs/pixel_kd/pixel-kd_logits_pspnet-r34_pspnet-r18_1k_toy.py',
}


def counted(fn):
    with counter.counting() as c:
        fn()
    return c


# --- the counter, on functions whose ops are counted by hand ---------------------------

def test_item_is_two_ops_one_sync():
    x = torch.ones(3)
    c = counted(lambda: x.sum().item())
    # sum, then _local_scalar_dense (the device -> host read)
    assert c.kernel_ops == {'aten.sum.default': 1, 'aten._local_scalar_dense.default': 1}
    assert (c.num_ops, c.num_syncs) == (2, 1)
    # int() and bool() read the same way
    assert counted(lambda: bool(x.sum() > 0)).num_syncs == 1
    assert counted(lambda: int(x.argmax())).num_syncs == 1


def test_add_relu_is_two_ops():
    a, b = torch.ones(3), torch.ones(3)
    c = counted(lambda: (a + b).relu())
    assert c.kernel_ops == {'aten.add.Tensor': 1, 'aten.relu.default': 1}
    assert (c.num_ops, c.num_syncs) == (2, 0)


def test_views_are_not_kernel_ops():
    x = torch.ones(2, 3, 4)
    c = counted(lambda: (x.view(6, 4), x.permute(2, 0, 1), x.transpose(0, 1), x[0],
                         x[:, 1:], x.unsqueeze(0), x.reshape(-1), x.flatten(1),
                         x.split(1), x.detach(), x.expand(5, 2, 3, 4)))
    assert c.num_ops == 0 and c.num_syncs == 0
    assert sum(c.ops.values()) >= 11  # dispatched, but metadata-only


def test_boolean_mask_indexing_syncs():
    x = torch.arange(6.).view(3, 2)
    m = torch.tensor([True, False, True])
    # the nonzero runs inside index / index_put_: one op each, counted as a sync
    c = counted(lambda: x[m])
    assert (c.num_ops, c.num_syncs) == (1, 1)
    assert c.syncs == {'aten.index.Tensor[mask]': 1}
    c = counted(lambda: x.__setitem__(m, torch.ones(2, 2)))  # ones + index_put_
    assert (c.num_ops, c.num_syncs) == (2, 1)
    # a scalar value is a masked_fill inside index_put_: no sync
    c = counted(lambda: x.__setitem__(m, 0.0))
    assert (c.num_ops, c.num_syncs) == (1, 0)
    # torch.where(cond) is a nonzero; integer indexing and a fixed-size nonzero do not sync
    assert counted(lambda: torch.where(m)).syncs == {'aten.nonzero.default': 1}
    idx = torch.tensor([0, 2])
    assert counted(lambda: x[idx]).num_syncs == 0
    assert counted(lambda: torch.nonzero_static(m, size=3)).num_syncs == 0


def test_data_dependent_ops_sync():
    r = torch.tensor([1, 2])
    assert counted(lambda: torch.repeat_interleave(r)).num_syncs == 1
    assert counted(lambda: torch.repeat_interleave(r, output_size=3)).num_syncs == 0
    assert counted(lambda: torch.unique(r)).num_syncs == 1
    assert counted(lambda: torch.masked_select(r, r > 1)).num_syncs == 1
    assert counted(lambda: torch.equal(r, r)).num_syncs == 1


def test_host_transfers():
    x = torch.ones(2)
    c = counted(lambda: x.tolist())
    assert (c.num_ops, c.num_syncs) == (0, 1) and c.syncs == {'Tensor.tolist': 1}
    # one read, not two: the tolist of what .cpu() returned reads host memory
    assert counted(lambda: x.cpu().tolist()).syncs == {'Tensor.cpu': 1}
    assert counted(lambda: x.to('cpu')).syncs == {'Tensor.to(cpu)': 1}
    # host data to the device: a blocking copy on CUDA
    assert counted(lambda: x.new_tensor([1.0, 2.0])).syncs == {'Tensor.new_tensor': 1}
    assert counted(lambda: torch.tensor([1.0], device=x.device)).num_syncs == 1
    # a tensor made from Python data without a device lives on the host; .to(x.device) of
    # a device tensor is a no-op on CUDA
    assert counted(lambda: torch.tensor([1, 2]).tolist()).num_syncs == 0
    assert counted(lambda: x.to(x.device)).num_syncs == 0


def _read_one():
    return torch.ones(2).sum().item()


def test_syncs_attributed_to_their_caller_and_cpu_fallbacks_apart():
    c = counted(_read_one)
    assert c.sites == {'tests/tools/test_census.py:_read_one': 1}
    # mmcv's deformable attention on CPU: its PyTorch fallback reads spatial_shapes on the
    # host, 2 levels: split sizes H*W (2 reads) and the reshape to (H, W) (2 x 2 reads);
    # the CUDA op reads nothing, so these 6 are counted apart, not as syncs
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    value = torch.ones(1, 2 * 2 + 1 * 1, 2, 3)  # (batch, keys, heads, dims)
    shapes = torch.tensor([[2, 2], [1, 1]])
    loc = torch.full((1, 3, 2, 2, 1, 2), 0.5)  # (batch, queries, heads, levels, points, xy)
    weights = torch.ones(1, 3, 2, 2, 1)
    c = counted(lambda: multi_scale_deformable_attn_pytorch(value, shapes, loc, weights))
    assert c.num_syncs == 0
    assert c.cpu_only == {'mmcv/ops/multi_scale_deform_attn.py:'
                          'multi_scale_deformable_attn_pytorch': 6}


def test_foreach_sgd_is_three_ops_whatever_the_parameter_count():
    """SGD with momentum, after its first step (buffers exist): _foreach_mul_ (buffers *=
    momentum), _foreach_add_ (buffers += grads), _foreach_add_ (params -= lr * buffers)."""
    sgd = torch.optim.SGD
    for n in (3, 10):
        params = [torch.nn.Parameter(torch.ones(4)) for _ in range(n)]
        for p in params:
            p.grad = torch.ones(4)
        with counter.foreach_sgd():
            opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        assert opt.defaults['foreach'] is True and torch.optim.SGD is sgd  # restored
        c = counter.count_calls(opt.step, repeats=2)
        assert c.kernel_ops == {'aten._foreach_mul_.Scalar': 1, 'aten._foreach_add_.List': 2}


def test_count_calls_rejects_state_dependent_counts():
    calls = []

    def fn():  # the warm-up call and the first counted one: 1 op; the second: 2 ops
        calls.append(1)
        x = torch.ones(1)
        if len(calls) > 2:
            x.sum()

    with pytest.raises(RuntimeError, match='differ between two identical calls'):
        counter.count_calls(fn, repeats=2)


# --- the baseline check and the markdown ----------------------------------------------

def _row(added_ops, added_syncs, batch=2, size=64, student_ops=1000):
    return dict(student=dict(ops=student_ops, syncs=0), teacher=dict(ops=0, syncs=0),
                distill=dict(ops=0, syncs=0), added_ops=added_ops, added_syncs=added_syncs,
                added_pct=0.0, added_top={}, added_sync_ops={}, goal=None, batch=batch,
                size=size)


def test_check_limits():
    base = {'configs': {'a.py': _row(100, 1)}}
    # limit on ops: 100 + 10% + 5 = 115
    assert census.check({'a.py': _row(115, 1)}, base) == []
    assert census.check({'a.py': _row(0, 0)}, base) == []  # fewer is fine
    [msg] = census.check({'a.py': _row(116, 1)}, base)
    assert 'added kernel ops 100 -> 116 (limit 115' in msg
    [msg] = census.check({'a.py': _row(100, 2)}, base)
    assert 'added host syncs 1 -> 2' in msg
    assert census.check({'b.py': _row(0, 0)}, base) == ['b.py: no baseline entry']
    [msg] = census.check({'a.py': _row(100, 1, size=128)}, base)
    assert 'baseline counted at batch 2, size 64' in msg


def test_goals_marked():
    row = _row(150, 0, student_ops=1000)
    row['goal'] = [0.15, 0]
    assert census.meets_goal(row) is True
    row['added_ops'] = 151
    assert census.meets_goal(row) is False
    row['added_ops'], row['added_syncs'] = 10, 1
    assert census.meets_goal(row) is False
    assert census.meets_goal(_row(10, 0)) is None
    table = census.markdown_table({'configs/x/x_coco.py': row})
    assert table.splitlines()[2] == ('| x_coco | 1000 / 0 | 0 / 0 | 0 / 0 | 10 (0.0%) | 1 '
                                     '| missed (<= 15%, <= 0) |')


def test_write_markdown_keeps_the_prose(tmp_path):
    path = tmp_path / 'census.md'
    path.write_text(f'# Title\n\nprose\n\n{census._MARK_BEGIN}\nold\n{census._MARK_END}\n\ntail\n')
    info = dict(command='python tools/census.py c.py', date='2026-01-01', commit='abc',
                machine='m')
    census.write_markdown(str(path), '| t |', info)
    text = path.read_text()
    assert text.startswith('# Title\n\nprose\n\n') and text.endswith('\n\ntail\n')
    assert 'old' not in text and '| t |' in text and '`python tools/census.py c.py`' in text


# --- the CI guard -----------------------------------------------------------------------

def _baseline() -> dict:
    with open(BASELINE) as f:
        return json.load(f)


def test_baseline_covers_every_family():
    missing = {k: v for k, v in FAMILIES.items() if v not in _baseline()['configs']}
    assert not missing, (f'{BASELINE} lacks {missing}; record it with: python tools/census.py '
                         + ' '.join(FAMILIES.values()) + ' --size 64 --json ' + BASELINE)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_added_ops_and_syncs_within_baseline(family):
    config = FAMILIES[family]
    base = _baseline()['configs'][config]
    result = census.census_config(osp.join(REPO, config), base['batch'], base['size'],
                                  repeats=1)
    problems = census.check({config: result}, _baseline())
    assert not problems, (
        f'{family}: ' + '; '.join(problems) + f'. Added ops now: {result["added_top"]}. '
        'If the growth is intended, re-record the baseline: python tools/census.py '
        + ' '.join(FAMILIES.values()) + f' --size {base["size"]} --json '
        'benchmarks/census_baseline.json')
