"""The toy demo: train a teacher, a baseline student and a CWD-distilled student with the
same schedule, evaluate all three (COCO mAP, pycocotools) and print one table.

    python tools/demo.py [--epochs 12] [--work-dir work_dirs/demo] [--reuse-teacher]

(``make demo`` runs it after the install.) The table is also written to
``<work-dir>/results.md`` and ``results.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmengine.config import Config  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import densekd  # noqa: E402,F401
from densekd.datasets.toy_data import ensure_toy_dataset  # noqa: E402

TEACHER = 'configs/toy/retinanet_r34-w32_fpn_12e_toy.py'
STUDENT = 'configs/toy/retinanet_r18-w16_fpn_12e_toy.py'
DISTILL = 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_12e_toy.py'


def run(config: str, work_dir: str, epochs: int, options: dict | None = None,
        train: bool = True) -> tuple[dict, float]:
    """Train (optionally) and test one config in-process; returns (metrics, train seconds)."""
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.work_dir = work_dir
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs + 1  # evaluate once, with runner.test() below
    cfg.param_scheduler[1].end = epochs
    cfg.param_scheduler[1].milestones = [round(epochs * 8 / 12), round(epochs * 11 / 12)]
    cfg.default_hooks.logger.interval = 50
    if options:
        cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    seconds = 0.0
    if train:
        start = time.perf_counter()
        runner.train()
        seconds = time.perf_counter() - start
    metrics = runner.test()
    return metrics, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--reuse-teacher', action='store_true',
                        help='skip teacher training when its checkpoint exists')
    args = parser.parse_args()
    work = osp.join(REPO, args.work_dir)
    ensure_toy_dataset(osp.join(REPO, 'data/toy'))
    t_dir, s_dir, d_dir = (osp.join(work, n) for n in ('teacher', 'student', 'cwd'))
    t_ckpt = osp.join(t_dir, f'epoch_{args.epochs}.pth')

    rows = []
    reuse = args.reuse_teacher and osp.isfile(t_ckpt)
    t_metrics, t_time = run(TEACHER, t_dir, args.epochs, train=not reuse,
                            options=dict(load_from=t_ckpt) if reuse else None)
    rows.append(('teacher RetinaNet R34-w32', TEACHER, t_metrics, t_time))
    s_metrics, s_time = run(STUDENT, s_dir, args.epochs)
    rows.append(('student RetinaNet R18-w16 (baseline)', STUDENT, s_metrics, s_time))
    d_metrics, d_time = run(DISTILL, d_dir, args.epochs,
                            options={'model.teacher.checkpoint': t_ckpt})
    rows.append(('student + CWD on FPN (distilled)', DISTILL, d_metrics, d_time))

    exported = osp.join(d_dir, f'epoch_{args.epochs}_student.pth')
    lines = ['| model | config | mAP | mAP@50 | train wall time (s) |',
             '|---|---|---|---|---|']
    for name, config, metrics, seconds in rows:
        lines.append(f'| {name} | `{config}` | {metrics["coco/bbox_mAP"]:.3f} | '
                     f'{metrics["coco/bbox_mAP_50"]:.3f} | '
                     f'{seconds:.0f}{" (reused)" if seconds == 0 else ""} |')
    table = '\n'.join(lines)
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(f'{args.epochs} epochs, toy set, `python tools/demo.py --epochs '
                f'{args.epochs}`\n\n{table}\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump([dict(model=n, config=c, metrics={k: float(v) for k, v in m.items()},
                        train_seconds=s) for n, c, m, s in rows], f, indent=2)
    print_log('\n' + table, logger='current', level=logging.INFO)
    print('\n' + table)
    print(f'\nexported student (plain mmdet checkpoint): {exported}')
    print(f'its config: {osp.join(d_dir, "student_config.py")}')


if __name__ == '__main__':
    main()
