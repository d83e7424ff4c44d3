"""Where a distillation step's overhead goes: wall time of named methods inside it.

    python benchmarks/time_parts.py CONFIG MODULE:Class.method [MODULE:Class.method ...]
        [--iters 15 --batch 2 --size 256 --threads 2]

Times the student step, the teacher forward and the distillation step as
``tools/benchmark.py`` does (same batch, shuffled interleaved rounds, medians), and, inside
them, the mean wall time per distillation step of each named method (wrapped with a timer;
nested methods count in each of their callers). Example, the GID component's parts::

    python benchmarks/time_parts.py configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py \\
        densekd.models.components.gid:GeneralInstanceDistill.forward \\
        densekd.models.components.gid:GeneralInstanceDistill.pool \\
        densekd.models.selectors.dense_head:DenseHeadReader.assign

The per-method figures come from the distillation step only (the student step and the
teacher forward do not call component code). A method's backward is not included: compare
its forward time with ``distill - student - teacher``.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import os.path as osp
import sys
import time
from collections import defaultdict

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))

import torch  # noqa: E402
from benchmark import build  # noqa: E402

from densekd.utils.benchmark import make_batch, step_functions, time_interleaved  # noqa: E402


def wrap(target: str, totals: dict[str, list[float]]) -> None:
    """Replace ``module:Class.method`` by a version adding its wall time to ``totals``."""
    module, _, attr = target.rpartition(':')
    if not module or '.' not in attr:
        raise SystemExit(f'expected MODULE:Class.method, got {target!r}')
    cls_name, method = attr.split('.', 1)
    cls = getattr(importlib.import_module(module), cls_name)
    original = getattr(cls, method)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[attr].append(time.perf_counter() - start)

    setattr(cls, method, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('methods', nargs='+', help='MODULE:Class.method')
    parser.add_argument('--iters', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.config, 'cpu')
    data = model.data_preprocessor(make_batch(model, args.batch, args.size), True)
    fns = step_functions(model, data)
    totals: dict[str, list[float]] = defaultdict(list)
    for target in args.methods:
        wrap(target, totals)
    for fn in fns.values():  # warm-up outside the counted rounds
        fn()
    totals.clear()
    res = time_interleaved(fns, args.iters, args.warmup)
    steps = args.iters + args.warmup  # every distillation step, warm-up rounds included
    print(f'{args.config}: batch {args.batch}, {args.size} px, {args.threads} threads, '
          f'medians of {args.iters} rounds')
    print(f'student {res["student"] * 1e3:.1f} ms, teacher {res["teacher"] * 1e3:.1f} ms, '
          f'distill {res["distill"] * 1e3:.1f} ms, ratio {res["ratio"]:.3f}, overhead '
          f'{(res["distill"] - res["floor"]) * 1e3:.1f} ms')
    for name in (t.rpartition(':')[2] for t in args.methods):
        calls = totals.get(name, [])
        print(f'  {name:50s} {sum(calls) / steps * 1e3:7.2f} ms/step '
              f'({len(calls) / steps:.0f} calls/step)')


if __name__ == '__main__':
    main()
