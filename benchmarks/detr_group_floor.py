"""What DETRDistill's query-prior group costs by itself: a student with the group's queries.

    python benchmarks/detr_group_floor.py CONFIG [CONFIG ...] [--iters 10 --batch 2
        --size 256 --threads 2] [--md out.md]

The query-prior group (``densekd.DETRQueryPriorDistill``) runs the teacher's queries through
the student's decoder and head, with losses and gradients, inside the student's own forward,
so the benchmark's ``components`` replay cannot time it apart. This script estimates its
method floor instead: besides the student step, the teacher forward and the distillation
step (as ``tools/benchmark.py``), it times the training step of a **grouped student**, the
same student config with ``num_queries`` raised by the teacher's (its decoder, head,
matching and losses on ``Q_s + Q_t`` queries), interleaved with the rest on the same batch,
and prints ``distill / (grouped student + teacher)`` next to the plain ratio. The estimate
is rough in both directions: the grouped student's self-attention spans all ``Q_s + Q_t``
queries where the group attends within itself (``split_self_attn``), its Hungarian
matching is larger, and a DINO student also keeps ``Q_s + Q_t`` encoder proposals; the
group's queries come from the teacher instead (their embedding and reference inputs are
not learned by the student). The other DETRDistill components (logits, feature) are not
in this floor.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import warnings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))

import torch  # noqa: E402
from benchmark import build  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402

from densekd.models.distillers.distillation_model import init_weights_offline  # noqa: E402
from densekd.registry import MODELS  # noqa: E402
from densekd.utils.benchmark import make_batch, step_functions, time_interleaved  # noqa: E402


def grouped_student(config: str) -> torch.nn.Module:
    """The distillation config's student, built with ``num_queries`` = student's + teacher's."""
    cfg = Config.fromfile(config)
    student = Config.fromfile(cfg.model.student.config)
    teacher = Config.fromfile(cfg.model.teacher.config)
    if not any(c.get('type') == 'densekd.DETRQueryPriorDistill' for c in cfg.model.components):
        raise SystemExit(f'{config}: no densekd.DETRQueryPriorDistill component')
    student.model.num_queries += teacher.model.num_queries
    with DefaultScope.overwrite_default_scope(student.get('default_scope', 'mmdet')), \
            warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(student.model)
        init_weights_offline(model)
    return model.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='+')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--md', help='write the table (markdown) here')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = ['| config | student ms | grouped student ms | teacher ms | distill ms | ratio | '
            'ratio to grouped student + teacher |', '|---|---|---|---|---|---|---|']
    for config in args.config:
        torch.manual_seed(0)
        model = build(config, 'cpu')
        data = model.data_preprocessor(make_batch(model, args.batch, args.size), True)
        fns = step_functions(model, data)
        grouped = grouped_student(config)
        opt = torch.optim.SGD([p for p in grouped.parameters() if p.requires_grad], lr=0.0,
                              momentum=0.9)

        def grouped_step(grouped=grouped, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            model.parse_losses(grouped.loss(data['inputs'], data['data_samples']))[0] \
                .backward()
            opt.step()

        fns['grouped_student'] = grouped_step
        res = time_interleaved(fns, args.iters, args.warmup)
        group_ratio = res['distill'] / (res['grouped_student'] + res['teacher'])
        ms = {k: res[k] * 1e3 for k in ('student', 'grouped_student', 'teacher', 'distill')}
        rows.append(f'| `{osp.relpath(osp.abspath(config), REPO)}` | {ms["student"]:.1f} | '
                    f'{ms["grouped_student"]:.1f} | {ms["teacher"]:.1f} | '
                    f'{ms["distill"]:.1f} | **{res["ratio"]:.3f}** | **{group_ratio:.3f}** |')
        print(rows[-1], flush=True)
    head = (f'Produced by `python benchmarks/detr_group_floor.py {" ".join(sys.argv[1:])}`: '
            f'{args.threads} torch threads, batch {args.batch}, {args.size} px, medians of '
            f'{args.iters} interleaved rounds.')
    print('\n' + head)
    print('\n'.join(rows))
    if args.md:
        with open(args.md, 'w') as f:
            f.write(head + '\n\n' + '\n'.join(rows) + '\n')


if __name__ == '__main__':
    main()
