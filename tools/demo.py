"""The toy demo: a teacher, a baseline student and two distilled students (CWD and FitNet
on the FPN), all on the same schedule, evaluated with COCO mAP (pycocotools), one table.

    python tools/demo.py [--epochs 24] [--jobs 2] [--work-dir work_dirs/demo]

``make demo`` runs it after the install. Runs go in pairs, one process and one torch thread
each (teacher with baseline student, then the two distilled students), which on 2 cores
halves the wall time and costs each run almost nothing: these small models gain little from
a second thread. While they train, a line per epoch and run gives the run's elapsed time and
ETA (each run writes ``<work-dir>/<run>/progress.json``; its full log is
``<work-dir>/<run>.log``), and the results table is printed again, a row filled in, as each
run finishes. The final table is also written to ``<work-dir>/results.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

from mmengine.hooks import Hook

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
POLL_SECONDS = 5.0


class ProgressHook(Hook):
    """Writes ``{unit, done, total, seconds}`` to ``path`` after each epoch (each 5 % of an
    iteration-based run): how far training is, for the demo's progress lines. It only
    reads the runner, so results are those of a run without it."""

    priority = 'LOWEST'

    def __init__(self, path: str, by_epoch: bool) -> None:
        self.path = path
        self.by_epoch = by_epoch
        self.start = time.perf_counter()

    def before_train(self, runner) -> None:
        self.start = time.perf_counter()

    def _write(self, done: int, total: int) -> None:
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(dict(unit='epoch' if self.by_epoch else 'iter', done=done, total=total,
                           seconds=time.perf_counter() - self.start), f)
        os.replace(tmp, self.path)  # the parent never reads a half-written file

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._write(runner.epoch + 1, runner.max_epochs)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        done, total = runner.iter + 1, runner.max_iters
        if not self.by_epoch and (done % max(1, total // 20) == 0 or done == total):
            self._write(done, total)


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
    runner.register_hook(ProgressHook(osp.join(work_dir, 'progress.json'),
                                      by_epoch='max_epochs' in cfg.train_cfg))
    start = time.perf_counter()
    runner.train()
    seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in runner.test().items()}
    with open(osp.join(work_dir, 'demo_result.json'), 'w') as f:
        json.dump(dict(config=config, train_seconds=seconds, metrics=metrics,
                       max_epochs=cfg.train_cfg.get('max_epochs'),
                       max_iters=cfg.train_cfg.get('max_iters')), f, indent=2)


def launch(name: str, config: str, work: str, epochs: int | None,
           options: dict) -> subprocess.Popen:
    """Start one run in a child process, its output going to ``<work>/<name>.log``."""
    run_dir = osp.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    for stale in ('progress.json', 'demo_result.json'):  # from an earlier demo in this dir
        if osp.exists(osp.join(run_dir, stale)):
            os.remove(osp.join(run_dir, stale))
    cmd = [sys.executable, __file__, '--run', config, '--work-dir', run_dir,
           '--options', json.dumps(options)]
    if epochs is not None:
        cmd += ['--epochs', str(epochs)]
    log = open(osp.join(work, f'{name}.log'), 'w')
    print(f'[demo] {name}: started {config} (log: {osp.relpath(log.name, REPO)})', flush=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes}:{secs:02d}'


def report_progress(name: str, run_dir: str, last: dict) -> None:
    """Print a line for ``name`` when its progress file shows a new epoch (or 5 % step)."""
    try:
        with open(osp.join(run_dir, 'progress.json')) as f:
            p = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return
    if p['done'] == last.get(name):
        return
    last[name] = p['done']
    eta = p['seconds'] / p['done'] * (p['total'] - p['done'])
    print(f'[demo] {name}: {p["unit"]} {p["done"]}/{p["total"]}, '
          f'{_clock(p["seconds"])} elapsed, ETA {_clock(eta)}', flush=True)


def format_table(results: dict) -> str:
    """The results table; rows of runs not finished yet read ``...``."""
    lines = ['| model | config | mAP | mAP@50 | train time (s) |', '|---|---|---|---|---|']
    for key, name, config in ROWS:
        if key not in results:
            lines.append(f'| {name} | `{config}` | ... | ... | ... |')
            continue
        m = results[key]['metrics']
        lines.append(f'| {name} | `{config}` | {m["coco/bbox_mAP"]:.3f} | '
                     f'{m["coco/bbox_mAP_50"]:.3f} | {results[key]["train_seconds"]:.0f} |')
    return '\n'.join(lines)


def run_stage(jobs: list[tuple], work: str, epochs: int | None, parallel: int,
              results: dict) -> None:
    """Run ``(name, config, options)`` jobs, ``parallel`` at a time, reporting progress;
    each finished run's ``demo_result.json`` goes into ``results`` and the table is printed."""
    pending, running, last = list(jobs), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            name, config, opts = pending.pop(0)
            running[name] = launch(name, config, work, epochs, opts)
        time.sleep(POLL_SECONDS)
        for name, proc in list(running.items()):
            report_progress(name, osp.join(work, name), last)
            if proc.poll() is None:
                continue
            del running[name]
            if proc.returncode != 0:
                for other in running.values():
                    other.terminate()
                raise SystemExit(f'[demo] {name} failed; see {osp.join(work, name + ".log")}')
            with open(osp.join(work, name, 'demo_result.json')) as f:
                results[name] = json.load(f)
            print(f'[demo] {name}: done\n\n{format_table(results)}\n', flush=True)


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
    results: dict = {}
    run_stage([('teacher', TEACHER, {}), ('student', STUDENT, {})], work, args.epochs,
              args.jobs, results)
    teacher = results['teacher']
    t_ckpt = osp.join(work, 'teacher', f'epoch_{teacher["max_epochs"]}.pth')
    opts = {'model.teacher.checkpoint': t_ckpt}
    run_stage([(k, v, opts) for k, v in DISTILLED.items()], work, args.epochs, args.jobs,
              results)
    total = time.perf_counter() - start

    epochs = results['student']['max_epochs']
    table = format_table(results)
    command = 'python tools/demo.py' + (f' --epochs {args.epochs}' if args.epochs else '')
    header = (f'Toy val set (128 images), {epochs} epochs each, 1 torch thread per run, '
              f'{args.jobs} runs at a time; `{command}` (total {total / 60:.1f} min).')
    with open(osp.join(work, 'results.md'), 'w') as f:
        f.write(header + '\n\n' + table + '\n')
    with open(osp.join(work, 'results.json'), 'w') as f:
        json.dump({key: results[key] for key, _, _ in ROWS}, f, indent=2)
    exported = osp.join(work, 'cwd', f'epoch_{epochs}_student.pth')
    print('\n' + header + '\n\n' + table)
    print(f'\nexported student (plain mmdet checkpoint): {osp.relpath(exported, REPO)}')
    print(f'its config: {osp.relpath(osp.join(work, "cwd", "student_config.py"), REPO)}')


if __name__ == '__main__':
    main()
