"""Training throughput of the multi-process path: 1 process vs N processes on CPU.

    python benchmarks/dist_scaling.py [CONFIG] [--images 256] [--batch 8] [--md out.md]

Runs ``tools/train.py`` (one process, all cores as torch threads, and one process with one
thread) and ``tools/dist_train.sh`` (one process per core, one thread each, gloo) for one
short epoch of the toy set each, validation off, and reads the per-iteration times that
mmengine logs (``vis_data/scalars.json``, median over the logged iterations, so start-up
and the dry run are excluded). Each process takes ``--batch`` images per iteration, so N
processes train on N times as many images per iteration.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT = 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(config: str, nproc: int, threads: int, args: argparse.Namespace, work: str) -> dict:
    """Train one short epoch; return median seconds per iteration and images/s."""
    options = [f'train_dataloader.dataset.indices={args.images}',
               f'train_dataloader.batch_size={args.batch}', 'train_cfg.max_epochs=1',
               'default_hooks.logger.interval=1', 'val_cfg=None', 'val_dataloader=None',
               'val_evaluator=None', 'model.teacher.checkpoint=None']
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHON=sys.executable,
               PORT=str(free_port()), PYTHONWARNINGS='ignore')
    if nproc == 1:
        cmd = [sys.executable, 'tools/train.py', config]
    else:
        cmd = ['bash', 'tools/dist_train.sh', config, str(nproc)]
    cmd += ['--work-dir', work, '--cfg-options', *options]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}')
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))[0]
    with open(scalars) as f:
        times = [json.loads(line)['time'] for line in f if '"time"' in line]
    times = times[2:] if len(times) > 4 else times  # drop the first (warm-up) iterations
    per_iter = statistics.median(times)
    images = args.batch * nproc
    return dict(nproc=nproc, threads=threads, iterations=len(times) + 2, s_per_iter=per_iter,
                images_per_iter=images, images_per_s=images / per_iter, wall_s=wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT)
    parser.add_argument('--images', type=int, default=256, help='training images (1 epoch)')
    parser.add_argument('--batch', type=int, default=8, help='images per process per step')
    parser.add_argument('--nproc', type=int, default=os.cpu_count() or 2)
    parser.add_argument('--md', help='write a markdown table here')
    args = parser.parse_args()
    settings = [(1, args.nproc), (1, 1), (args.nproc, 1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (nproc, threads) in enumerate(settings):
            rows.append(run(args.config, nproc, threads, args, osp.join(tmp, str(i))))
            print(rows[-1], flush=True)
    base = rows[0]['images_per_s']
    lines = [f'Produced by `python benchmarks/dist_scaling.py {args.config} --images '
             f'{args.images} --batch {args.batch}` ({os.cpu_count()} CPU cores): one epoch of '
             f'{args.images} toy images, {args.batch} images per process per step, median '
             'time per logged iteration.', '',
             '| launch | processes x torch threads | s / iteration | images / iteration | '
             'images/s | vs 1 process, all threads |', '|---|---|---|---|---|---|']
    for r in rows:
        launch = 'tools/train.py' if r['nproc'] == 1 else 'tools/dist_train.sh (gloo)'
        lines.append(f'| {launch} | {r["nproc"]} x {r["threads"]} | {r["s_per_iter"]:.3f} | '
                     f'{r["images_per_iter"]} | {r["images_per_s"]:.1f} | '
                     f'{r["images_per_s"] / base:.2f}x |')
    print('\n'.join(lines))
    if args.md:
        with open(args.md, 'w') as f:
            f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
