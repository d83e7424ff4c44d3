"""Plot training curves of mmengine runs (their ``vis_data/scalars.json``) into one PNG.

    python tools/plot_curves.py WORK_DIR[=LABEL] [WORK_DIR[=LABEL] ...] --out curves.png
        [--keys loss loss_cls ...] [--smooth 10]

One panel per key (default: every key with ``loss`` that any run logs, distillation losses
included), one line per run, x = training iteration; validation metrics (``*bbox_mAP``,
``mIoU``) go to the last panel as points. The newest timestamped log folder of each work dir
is used.
"""
from __future__ import annotations

import argparse
import glob
import json
import os.path as osp
from collections import defaultdict


def read_scalars(work_dir: str) -> tuple[dict[str, list], dict[str, list]]:
    """``(train, val)``: per key a list of ``(iteration, value)``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise SystemExit(f'no */vis_data/scalars.json under {work_dir}')
    train, val = defaultdict(list), defaultdict(list)
    last_iter = 0
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            step = rec.get('iter', rec.get('step', last_iter))
            if any(k.startswith('loss') or '.loss' in k for k in rec):
                last_iter = step
                for k, v in rec.items():
                    if isinstance(v, (int, float)) and ('loss' in k):
                        train[k].append((step, v))
            else:
                for k, v in rec.items():
                    if isinstance(v, (int, float)) and k not in ('step', 'iter', 'epoch',
                                                                 'data_time', 'time'):
                        val[k].append((last_iter, v))
    return train, val


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('runs', nargs='+', help='WORK_DIR or WORK_DIR=LABEL')
    parser.add_argument('--out', required=True)
    parser.add_argument('--keys', nargs='+')
    parser.add_argument('--smooth', type=int, default=10)
    parser.add_argument('--title', default='')
    args = parser.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    runs = []
    for spec in args.runs:
        path, _, label = spec.partition('=')
        runs.append((label or osp.basename(osp.normpath(path)), *read_scalars(path)))
    keys = args.keys or sorted({k for _, train, _ in runs for k in train},
                               key=lambda k: (k != 'loss', k))
    has_val = any(val for _, _, val in runs)
    n = len(keys) + int(has_val)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for label, train, _ in runs:
            if key in train:
                xs, ys = zip(*train[key])
                ax.plot(xs, smooth(list(ys), args.smooth), label=label, lw=1.2)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if has_val:
        ax = axes.flat[len(keys)]
        for label, _, val in runs:
            for key, points in val.items():
                if key.endswith(('bbox_mAP', 'mIoU')):
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, 'o-', label=f'{label}: {key}', ms=4)
        ax.set_title('validation', fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis('off')
    if args.title:
        fig.suptitle(args.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out} ({len(runs)} runs, {len(keys)} loss keys)')


if __name__ == '__main__':
    main()
