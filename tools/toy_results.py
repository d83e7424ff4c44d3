"""Toy-set results of every method against the same teacher, student and schedule.

    python tools/toy_results.py det [--methods cwd mgd ...] [--seeds 0 1 2] [--jobs 2]
        [--work-dir work_dirs/toy_results] [--md configs/RESULTS_toy_det.md]
    python tools/toy_results.py seg ...

Trains the teacher once (seed 0; or reuses ``--teacher-checkpoint``), the baseline student
and each distilled student for every seed, all with the configs' own schedule, then writes
one table: mean and spread (min-max) over seeds of the task metric per row. Runs go
``--jobs`` at a time, one process and one torch thread each (``tools/demo.py --run``). A
run whose ``demo_result.json`` exists is not repeated, so an interrupted call resumes;
``--table-only`` trains nothing and tabulates what is there (missing runs show as ``-``).
The step cost of each method comes from ``tools/benchmark.py`` (run separately; see
benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TASKS = {
    'det': dict(
        metric='coco/bbox_mAP', metric_name='mAP', extra=('coco/bbox_mAP_50', 'mAP@50'),
        teacher=('teacher: RetinaNet R34-w32', 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py'),
        student=('student: RetinaNet R18-w16 (baseline)',
                 'configs/toy/retinanet_r18-w16_fpn_24e_toy.py'),
        methods={
            'fitnet': ('FitNet L2, FPN, 1x1 adapters',
                       'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py'),
            'cwd': ('CWD, FPN', 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py'),
            'mgd': ('MGD, FPN', 'configs/mgd/mgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py'),
            'fgd': ('FGD, FPN', 'configs/fgd/fgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py'),
            'pkd': ('PKD, FPN P3-P6',
                    'configs/pkd/pkd_fpn_retinanet-r34_retinanet-r18_24e_toy.py'),
            'gid': ('GID (feature + relation + response)',
                    'configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py'),
            'gid_feature': ('GID, feature loss only',
                            'configs/gid/gid-feature-only_retinanet-r34_retinanet-r18_24e_toy.py'),
            'gid_relation': ('GID, relation loss only',
                             'configs/gid/gid-relation-only_retinanet-r34_retinanet-r18_24e_toy.py'),
            'gid_response': ('GID, response losses only',
                             'configs/gid/gid-response-only_retinanet-r34_retinanet-r18_24e_toy.py'),
        }),
    'seg': dict(
        metric='mIoU', metric_name='mIoU', extra=('aAcc', 'aAcc'),
        teacher=('teacher: PSPNet R34-w32', 'configs/toy/pspnet_r34-w32_1500i_toy.py'),
        student=('student: PSPNet R18-w16 (baseline)', 'configs/toy/pspnet_r18-w16_1k_toy.py'),
        methods={
            'pixel_kd': ('pixel-wise KD, logits',
                         'configs/pixel_kd/pixel-kd_logits_pspnet-r34_pspnet-r18_1k_toy.py'),
            'cwd': ('CWD, logits', 'configs/cwd/cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py'),
            'mgd': ('MGD, last backbone stage (+ CWD logits)',
                    'configs/mgd/mgd_layer4_pspnet-r34_pspnet-r18_1k_toy.py'),
        }),
}


def launch(name: str, config: str, work: str, options: dict) -> subprocess.Popen | None:
    """Start one ``tools/demo.py --run`` child unless its result exists already."""
    if osp.exists(osp.join(work, name, 'demo_result.json')):
        print(f'[results] {name}: done before, kept', flush=True)
        return None
    os.makedirs(work, exist_ok=True)
    from demo import launch as launch_run  # tools/demo.py, beside this script

    return launch_run(name, config, work, None, options, work)


def run_all(jobs: list[tuple[str, str, dict]], work: str, parallel: int) -> None:
    """Run ``(name, config, options)`` jobs, ``parallel`` at a time; stop on a failure."""
    running: list[tuple[str, subprocess.Popen]] = []
    pending = list(jobs)
    while pending or running:
        while pending and len(running) < parallel:
            name, config, options = pending.pop(0)
            proc = launch(name, config, work, options)
            if proc is not None:
                running.append((name, proc))
        if not running:
            continue
        time.sleep(2)
        for name, proc in list(running):
            code = proc.poll()
            if code is None:
                continue
            running.remove((name, proc))
            if code:
                raise SystemExit(f'[results] {name} failed; see {osp.join(work, name)}.log')


def last_checkpoint(run_dir: str) -> str:
    """The final checkpoint of a finished run (epoch-based or iteration-based)."""
    with open(osp.join(run_dir, 'demo_result.json')) as f:
        res = json.load(f)
    name = f'epoch_{res["max_epochs"]}.pth' if res.get('max_epochs') else \
        f'iter_{res["max_iters"]}.pth'
    return osp.join(run_dir, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('task', choices=sorted(TASKS))
    parser.add_argument('--methods', nargs='+', help='default: all of the task')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--teacher-checkpoint', help='reuse a trained teacher')
    parser.add_argument('--work-dir', default='work_dirs/toy_results')
    parser.add_argument('--md', help='also write the table here')
    parser.add_argument('--table-only', action='store_true',
                        help='train nothing; tabulate the runs already in --work-dir')
    args = parser.parse_args()
    task = TASKS[args.task]
    methods = args.methods or list(task['methods'])
    unknown = sorted(set(methods) - set(task['methods']))
    if unknown:
        raise SystemExit(f'unknown methods {unknown}; choose from {sorted(task["methods"])}')
    work = osp.join(REPO, args.work_dir, args.task)
    sys.path.insert(0, REPO)
    from densekd.datasets.toy_data import ensure_toy_dataset

    ensure_toy_dataset(osp.join(REPO, 'data/toy'))
    start = time.perf_counter()
    teacher = args.teacher_checkpoint
    if args.table_only:
        teacher = teacher or last_checkpoint(osp.join(work, 'teacher_s0'))
    else:
        jobs = [(f'student_s{s}', task['student'][1], {'randomness.seed': s})
                for s in args.seeds]
        if teacher is None:
            run_all([('teacher_s0', task['teacher'][1], {'randomness.seed': 0})], work,
                    args.jobs)
            teacher = last_checkpoint(osp.join(work, 'teacher_s0'))
        jobs += [(f'{m}_s{s}', task['methods'][m][1],
                  {'randomness.seed': s, 'model.teacher.checkpoint': teacher})
                 for m in methods for s in args.seeds]
        run_all(jobs, work, args.jobs)
    table = summarise(args, task, methods, work, teacher)
    print(f'\n{table}\n(total {(time.perf_counter() - start) / 60:.1f} min)')
    if args.md:
        with open(args.md, 'w') as f:
            f.write(table + '\n')


def summarise(args: argparse.Namespace, task: dict, methods: list[str], work: str,
              teacher: str) -> str:
    """Markdown table: metric mean and min-max over seeds, per row."""
    def read(name: str) -> dict | None:
        path = osp.join(work, name, 'demo_result.json')
        if not osp.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    fmt = '.3f' if args.task == 'det' else '.2f'  # COCO mAP in [0, 1], mmseg mIoU in %

    def cell(values: list[float]) -> str:
        if not values:
            return '-'
        if len(values) == 1:
            return f'{values[0]:{fmt}}'
        return (f'{statistics.mean(values):{fmt}} ({min(values):{fmt}}-'
                f'{max(values):{fmt}})')

    metric, extra = task['metric'], task['extra'][0]
    rows = [('teacher', task['teacher'][0], task['teacher'][1], ['teacher_s0'])]
    rows.append(('student', task['student'][0], task['student'][1],
                 [f'student_s{s}' for s in args.seeds]))
    rows += [(m, 'student + ' + task['methods'][m][0], task['methods'][m][1],
              [f'{m}_s{s}' for s in args.seeds]) for m in methods]
    base = [r['metrics'][metric] for r in map(read, rows[1][3]) if r]
    lines = [f'| model | config | {task["metric_name"]} | {task["extra"][1]} | vs baseline | '
             'seeds | train s (mean) |', '|---|---|---|---|---|---|---|']
    for key, label, config, names in rows:
        results = [r for r in map(read, names) if r]
        values = [r['metrics'][metric] for r in results]
        extras = [r['metrics'][extra] for r in results]
        delta = '' if key in ('teacher', 'student') or not values or not base else \
            f'{statistics.mean(values) - statistics.mean(base):+{fmt}}'
        secs = f'{statistics.mean(r["train_seconds"] for r in results):.0f}' if results else '-'
        lines.append(f'| {label} | `{config}` | {cell(values)} | {cell(extras)} | {delta} | '
                     f'{len(values)} | {secs} |')
    seeds = ' '.join(map(str, args.seeds))
    cmd = f'python tools/toy_results.py {args.task} --seeds {seeds}'
    header = (f'Toy {args.task} val set, each run on its config\'s own schedule, 1 torch thread, '
              f'{args.jobs} run(s) at a time; mean (min-max) over seeds {seeds} (teacher: seed 0, '
              f'`{osp.relpath(teacher, REPO)}`). Produced by `{cmd}`.')
    return header + '\n\n' + '\n'.join(lines)


if __name__ == '__main__':
    main()
