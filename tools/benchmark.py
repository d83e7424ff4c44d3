"""Time distillation configs against their floor (student step + teacher forward).

    python tools/benchmark.py CONFIG [CONFIG ...] [--iters 20 --batch 2 [4 ...]
        --size 256 [512 ...] --device cpu] [--loss-mode] [--components] [--speedups]
        [--memory] [--json out.json] [--md out.md]

Prints a table of medians (ms), images/s, the ratio distill / (student + teacher) and, with
``--memory``, peak memory per variant. ``--components`` also times the components alone on
recorded tap outputs (forward, backward, step) and prints the method ratio
distill / (student + teacher + components): what the framework costs beyond the method's
own compute (see :mod:`densekd.utils.benchmark`). Several ``--batch``/``--size`` values time every
combination (the scaling table). ``--speedups`` also times the teacher-side options of
:class:`DistillationModel` (``teacher_inference_mode``, ``teacher_channels_last``,
``teacher_autocast``), each as its own teacher forward and distillation step, in the same
interleaved rounds (CUDA max allocated; on CPU the peak RSS of a child
process that builds both models, resets its RSS high-water mark, then runs only that
variant, so each CPU figure includes the libraries and both models' weights). The teacher
keeps random weights: cost does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import warnings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

import densekd  # noqa: E402,F401
from densekd.models.distillers.distillation_model import init_weights_offline  # noqa: E402
from densekd.registry import MODELS  # noqa: E402
from densekd.utils.benchmark import make_batch, step_functions, time_interleaved  # noqa: E402

VARIANTS = ('student', 'teacher', 'distill', 'teacher_loss_mode', 'components')
MEMORY_VARIANTS = VARIANTS[:4]  # the components replay gets no memory figure
# teacher-side options timed by --speedups (bf16 autocast runs on CPU too; fp16 only on CUDA)
SPEEDUPS = {
    'inference_mode': dict(teacher_inference_mode=True),
    'channels_last': dict(teacher_channels_last=True),
    'bf16': dict(teacher_autocast='bf16'),
}


def build(config: str, device: str, **options):
    cfg = Config.fromfile(config)
    cfg.model.teacher.checkpoint = None
    cfg.model.update(options)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')), \
            warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
        # no uninitialised parameters (DETRs' level_embeds can hold NaN), no downloads
        init_weights_offline(model)
    return model.to(device).train()


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5); False if not."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """``VmHWM`` of this process in MiB: the peak RSS since the last reset."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmHWM in /proc/self/status')


def peak_rss_child(args: argparse.Namespace, variant: str) -> float:
    """Peak RSS (MiB) of a child that builds the model and runs ``variant`` only."""
    cmd = [sys.executable, __file__, args.config[0], '--iters', '3', '--warmup', '1',
           '--batch', str(args.batch), '--size', str(args.size), '--device', args.device,
           '--only', variant]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='+')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batch', type=int, nargs='+', default=[2])
    parser.add_argument('--size', type=int, nargs='+', default=[256])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--loss-mode', action='store_true',
                        help='also time the teacher in mode=loss (a generic distiller)')
    parser.add_argument('--components', action='store_true',
                        help='also time the components alone on recorded taps (method floor)')
    parser.add_argument('--speedups', action='store_true',
                        help='also time the teacher-side options (' + ', '.join(SPEEDUPS) + ')')
    parser.add_argument('--memory', action='store_true', help='measure peak memory too')
    parser.add_argument('--json', help='write the results here')
    parser.add_argument('--md', help='write a summary table (markdown) here')
    parser.add_argument('--only', choices=MEMORY_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only:  # memory child: build, run one variant, print its peak RSS in MiB
        args.batch, args.size = args.batch[0], args.size[0]
        fns = prepare(args, args.config[0], with_loss_mode=True)
        reset = reset_peak_rss()
        for _ in range(args.warmup + args.iters):
            fns[args.only]()
        print(peak_rss_mib() if reset else resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    results = []
    for config in args.config:
        for batch in args.batch:
            for size in args.size:
                one = argparse.Namespace(**{**vars(args), 'batch': batch, 'size': size})
                results.append(bench_one(one, config))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=2)
    if args.md:
        write_summary(args, results)


def prepare(args: argparse.Namespace, config: str, with_loss_mode: bool,
            speedups: bool = False, with_components: bool = False) -> dict:
    """Step closures on one preprocessed batch; with ``speedups``, one extra model per
    teacher option (same weights) adds ``teacher+<option>`` and ``distill+<option>``."""
    model = build(config, args.device)
    batch = make_batch(model, args.batch, args.size)
    data = model.data_preprocessor(batch, True)
    fns = step_functions(model, data, with_loss_mode=with_loss_mode,
                         with_components=with_components)
    if speedups:
        for name, options in SPEEDUPS.items():
            fast = build(config, args.device, **options)
            fast.load_state_dict(model.state_dict())
            fast.teacher.load_state_dict(model.teacher.state_dict())
            extra = step_functions(fast, data)
            fns[f'teacher+{name}'] = extra['teacher']
            fns[f'distill+{name}'] = extra['distill']
    return fns


def bench_one(args: argparse.Namespace, config: str) -> dict:
    """Time one config; print its table; return the numbers."""
    fns = prepare(args, config, args.loss_mode, args.speedups, args.components)
    sync = torch.cuda.synchronize if args.device.startswith('cuda') else None
    res = time_interleaved(fns, args.iters, args.warmup, sync=sync)
    memory = {}
    if args.memory:
        for name in [n for n in fns if n in MEMORY_VARIANTS]:
            if args.device.startswith('cuda'):
                torch.cuda.reset_peak_memory_stats()
                fns[name]()
                torch.cuda.synchronize()
                memory[name] = torch.cuda.max_memory_allocated() / 2 ** 20
            else:
                child = argparse.Namespace(**{**vars(args), 'config': [config]})
                memory[name] = peak_rss_child(child, name)
    rows = ['| variant | median ms | images/s | peak MiB |', '|---|---|---|---|']
    for name in [n for n in VARIANTS if n in fns] + [n for n in fns if n not in VARIANTS]:
        mem = f'{memory[name]:.0f}' if name in memory else '-'
        rows.append(f'| {name} | {res[name] * 1e3:.1f} | {args.batch / res[name]:.1f} | {mem} |')
    rows.append(f'| floor (student + teacher) | {res["floor"] * 1e3:.1f} | | |')
    if 'method_floor' in res:
        rows.append(f'| method floor (+ components) | {res["method_floor"] * 1e3:.1f} | | |')
    for name in SPEEDUPS:
        if f'distill+{name}' in res:
            res[f'ratio+{name}'] = res[f'distill+{name}'] / res['floor']
            print_speedup = (f'{name}: teacher {res[f"teacher+{name}"] / res["teacher"]:.3f}x'
                             f' of plain, distill {res[f"ratio+{name}"]:.3f}x plain floor')
            rows.append(f'| ({print_speedup}) | | | |')
    print(f'\n{osp.relpath(config, REPO)}: batch {args.batch}, {args.size} px, '
          f'{args.device}, {args.iters} interleaved rounds, torch threads '
          f'{torch.get_num_threads()}')
    print('\n'.join(rows))
    print(f'ratio distill / floor = {res["ratio"]:.3f}')
    if 'method_ratio' in res:
        print(f'ratio distill / method floor = {res["method_ratio"]:.3f}')
    elif args.components:
        print('components not timed apart: one changes the student forward or reads state '
              'of its own hooks')
    if 'teacher_loss_mode' in res:
        generic = res['distill'] - res['teacher'] + res['teacher_loss_mode']
        res['loss_mode_ratio_estimate'] = generic / res['floor']
        print(f'teacher in loss mode instead: {res["loss_mode_ratio_estimate"]:.3f} x floor '
              '(estimate)')
    return dict(config=osp.relpath(config, REPO), batch=args.batch, size=args.size,
                device=args.device, iters=args.iters, threads=torch.get_num_threads(),
                memory_mib=memory, **res)


def write_summary(args: argparse.Namespace, results: list[dict]) -> None:
    """Markdown tables over all runs, with the command that produced them."""
    cmd = 'python tools/benchmark.py ' + ' '.join(
        osp.relpath(a, REPO) if osp.isabs(a) else a for a in sys.argv[1:])
    lines = [f'Produced by `{cmd}` on {results[0]["device"]} ({results[0]["threads"]} torch '
             f'threads), medians of {args.iters} interleaved rounds.', '',
             '| config | batch | px | student ms | teacher ms | distill ms | ratio '
             'distill/(student+teacher) | distill images/s | peak MiB student / teacher / '
             'distill | loss-mode teacher (est.) |' + (
                 ' components ms | ratio distill/(student+teacher+components) |'
                 if args.components else ''),
             '|---|---|---|---|---|---|---|---|---|---|' + ('---|---|' if args.components
                                                             else '')]
    for r in results:
        mem = r['memory_mib']
        mem_s = ' / '.join(f'{mem[k]:.0f}' for k in ('student', 'teacher', 'distill')) \
            if mem else '-'
        est = r.get('loss_mode_ratio_estimate')
        loss_mode = '-' if est is None else f'{est:.3f}'
        lines.append(f'| `{r["config"]}` | {r["batch"]} | {r["size"]} | '
                     f'{r["student"] * 1e3:.1f} | {r["teacher"] * 1e3:.1f} | '
                     f'{r["distill"] * 1e3:.1f} | **{r["ratio"]:.3f}** | '
                     f'{r["batch"] / r["distill"]:.1f} | {mem_s} | {loss_mode} |' + (
                         (f' {r["components"] * 1e3:.1f} | **{r["method_ratio"]:.3f}** |'
                          if 'method_ratio' in r else ' - | - |') if args.components else ''))
    fast = [r for r in results if any(f'ratio+{n}' in r for n in SPEEDUPS)]
    if fast:
        lines += ['', 'Teacher-side options: teacher forward time relative to the plain '
                  '`no_grad` teacher, and the distillation step with that option relative '
                  'to the plain floor (student + plain teacher).', '',
                  '| config | batch | px | ' + ' | '.join(
                      f'{n}: teacher / distill ratio' for n in SPEEDUPS) + ' |',
                  '|---|---|---|' + '---|' * len(SPEEDUPS)]
        for r in fast:
            cells = [f'{r[f"teacher+{n}"] / r["teacher"]:.3f} / {r[f"ratio+{n}"]:.3f}'
                     for n in SPEEDUPS]
            lines.append(f'| `{r["config"]}` | {r["batch"]} | {r["size"]} | '
                         + ' | '.join(cells) + ' |')
    os.makedirs(osp.dirname(osp.abspath(args.md)), exist_ok=True)
    with open(args.md, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print(f'\nsummary: {args.md}')


if __name__ == '__main__':
    main()
