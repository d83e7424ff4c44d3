"""The toy demo: a teacher, a baseline student and two distilled students (CWD and FitNet
on the FPN), all on the same schedule, evaluated with COCO mAP (pycocotools), one table.

    python tools/demo.py [--epochs 24] [--jobs 2] [--work-dir work_dirs/demo]

``make demo`` runs it after the install. Runs go in pairs, one process and one torch thread
each (teacher with baseline student, then the two distilled students), which on 2 cores
halves the wall time and costs each run almost nothing: these small models gain little from
a second thread. The table is also written to ``<work-dir>/results.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TEACHER = 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py'
STUDENT = 'configs/toy/retinanet_r18-w16_fpn_24e_toy.py'
DISTILLED = {
    'cwd': 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'fitnet': 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
}
ROWS = [('teacher', 'teacher: RetinaNet R34-w32', TEACHER),
        ('student', 'student: RetinaNet R18-w16 (baseline)', STUDENT),
        ('cwd', 'student + CWD on FPN', DISTILLED['cwd']),
        ('fitnet', 'student + FitNet L2 on FPN (1x1 adapters)', DISTILLED['fitnet'])]


def run_one(config: str, work_dir: str, epochs: int | None, options: dict) -> None:
    """Child process: train, then test, one config; write ``<work_dir>/demo_result.json``."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, REPO)
    from mmengine.config import Config
    from mmengine.runner import Runner

    import densekd  # noqa: F401
    from densekd.datasets.toy_data import ensure_toy_dataset

    ensure_toy_dataset(osp.join(REPO, 'data/toy'))
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.work_dir = work_dir
    if epochs is not None:
        base = cfg.train_cfg.max_epochs
        cfg.train_cfg.max_epochs = epochs
        step = cfg.param_scheduler[1]
        step.end = epochs
        step.milestones = [max(1, round(m * epochs / base)) for m in step.milestones]
    length = cfg.train_cfg.get('max_epochs', cfg.train_cfg.get('max_iters'))
    cfg.train_cfg.val_interval = length + 1  # evaluate once, below
    cfg.default_hooks.logger.interval = 50
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in runner.test().items()}
    with open(osp.join(work_dir, 'demo_result.json'), 'w') as f:
        json.dump(dict(config=config, train_seconds=seconds, metrics=metrics,
                       max_epochs=cfg.train_cfg.get('max_epochs'),
                       max_iters=cfg.train_cfg.get('max_iters')), f, indent=2)


def launch(name: str, config: str, work: str, epochs: int | None, options: dict,
           log_dir: str) -> subprocess.Popen:
    cmd = [sys.executable, __file__, '--run', config, '--work-dir', osp.join(work, name),
           '--options', json.dumps(options)]
    if epochs is not None:
        cmd += ['--epochs', str(epochs)]
    log = open(osp.join(log_dir, f'{name}.log'), 'w')
    print(f'[demo] {name}: {config} (log: {osp.relpath(log.name, REPO)})', flush=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def run_stage(jobs: list[tuple], work: str, epochs: int | None, parallel: int) -> None:
    pending = list(jobs)
    while pending:
        batch, pending = pending[:parallel], pending[parallel:]
        procs = [(name, launch(name, cfg, work, epochs, opts, work)) for name, cfg, opts in batch]
        for name, proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f'[demo] {name} failed; see {osp.join(work, name + ".log")}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, help='override the configs\' 24 epochs')
    parser.add_argument('--jobs', type=int, default=2, help='runs at a time')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--run', help=argparse.SUPPRESS)
    parser.add_argument('--options', default='{}', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.run, args.work_dir, args.epochs, json.loads(args.options))
        return

    sys.path.insert(0, REPO)
    from densekd.datasets.toy_data import ensure_toy_dataset

    work = osp.join(REPO, args.work_dir)
    os.makedirs(work, exist_ok=True)
    ensure_toy_dataset(osp.join(REPO, 'data/toy'))
    start = time.perf_counter()
    run_stage([('teacher', TEACHER, {}), ('student', STUDENT, {})], work, args.epochs,
              args.jobs)
    with open(osp.join(work, 'teacher', 'demo_result.json')) as f:
        t_ckpt = osp.join(work, 'teacher', f'epoch_{json.load(f)["max_epochs"]}.pth')
    opts = {'model.teacher.checkpoint': t_ckpt}
    run_stage([(k, v, opts) for k, v in DISTILLED.items()], work, args.epochs, args.jobs)
    total = time.perf_counter() - start

    results = {}
    for key, _, _ in ROWS:
        with open(osp.join(work, key, 'demo_result.json')) as f:
            results[key] = json.load(f)
    epochs = results['student']['max_epochs']
    lines = ['| model | config | mAP | mAP@50 | train time (s) |', '|---|---|---|---|---|']
    for key, name, config in ROWS:
        m = results[key]['metrics']
        lines.append(f'| {name} | `{config}` | {m["coco/bbox_mAP"]:.3f} | '
                     f'{m["coco/bbox_mAP_50"]:.3f} | {results[key]["train_seconds"]:.0f} |')
    table = '\n'.join(lines)
    command = 'python tools/demo.py' + (f' --epochs {args.epochs}' if args.epochs else '')
    header = (f'Toy val set (128 images), {epochs} epochs each, 1 torch thread per run, '
              f'{args.jobs} runs at a time; `{command}` (total {total / 60:.1f} min).')
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(header + '\n\n' + table + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2)
    exported = osp.join(work, 'cwd', f'epoch_{epochs}_student.pth')
    print('\n' + header + '\n\n' + table)
    print(f'\nexported student (plain mmdet checkpoint): {osp.relpath(exported, REPO)}')
    print(f'its config: {osp.relpath(osp.join(work, "cwd", "student_config.py"), REPO)}')


if __name__ == '__main__':
    main()
