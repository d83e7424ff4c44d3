"""Evaluate a checkpoint: the student by default, the teacher with --teacher.

    python tools/test.py CONFIG work_dirs/X/epoch_24.pth            # distilled student
    python tools/test.py CONFIG work_dirs/X/epoch_24_student.pth    # student-only file
    python tools/test.py work_dirs/X/student_config.py work_dirs/X/epoch_24.pth  # plain config
    python tools/test.py CONFIG --teacher                           # the teacher

The weights are loaded strictly into the model that is evaluated (the student of a
distillation config, else the config's model), with densekd's safe loader: a checkpoint
that does not match it stops the tool with the list of missing, unexpected and mis-shaped
keys (exit code 1) instead of scoring partly random weights. A distillation checkpoint
given with a plain student config is evaluated through its ``student.*`` weights.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import nn

sys.path.insert(0, os.getcwd())  # so custom_imports can name modules of the current project
import densekd  # noqa: E402,F401
from densekd.models import DistillationModel  # noqa: E402
from densekd.utils.checkpoint import (  # noqa: E402
    STUDENT_PREFIX,
    CheckpointError,
    CheckpointMismatchError,
    extract_state_dict,
    load_checkpoint_file,
    load_state_dict_strict,
)
from densekd.utils.config import (  # noqa: E402
    is_distillation_config,
    load_model_spec,
    make_student_config,
)
from densekd.utils.launch import setup_launcher, teardown_launcher  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (``argv``, default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Test a (distilled) detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (not needed with --teacher)')
    parser.add_argument('--teacher', action='store_true',
                        help="evaluate the teacher of a distillation config, with its "
                             "model.teacher.checkpoint")
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out-metrics', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def check_teacher(cfg: Config, args: argparse.Namespace) -> None:
    """Refuse ``--teacher`` runs that would not evaluate the config's trained teacher."""
    if not is_distillation_config(cfg):
        raise SystemExit('test: --teacher needs a distillation config (model.type '
                         'densekd.DistillationModel)')
    if args.checkpoint:
        raise SystemExit(f'test: --teacher evaluates the teacher with the config\'s '
                         f'`model.teacher.checkpoint`; the CHECKPOINT argument '
                         f'{args.checkpoint!r} would be ignored. Drop it, or give the teacher '
                         f'weights with --cfg-options model.teacher.checkpoint={args.checkpoint}')
    if not load_model_spec(cfg.model['teacher'], 'teacher').checkpoint:
        raise SystemExit('test: --teacher, but the config sets no `model.teacher.checkpoint`: '
                         'the teacher would be evaluated with random weights. Set it in the '
                         'config or with --cfg-options model.teacher.checkpoint=PATH')


def evaluated_model(runner: Runner) -> nn.Module:
    """The module the test scores: the student of a distillation model, else the model."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return model.student if isinstance(model, DistillationModel) else model


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the tool.

    Args:
        argv: the command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The test metrics.

    Raises:
        SystemExit: with the error message (exit code 1) when the checkpoint is missing, is
            not a checkpoint or does not match the evaluated model, or ``--teacher`` is
            misused.
    """
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    state = None
    distill = is_distillation_config(cfg)
    if args.teacher:
        check_teacher(cfg, args)
        cfg.model.predict_with = 'teacher'  # the model loads the teacher strictly itself
    else:
        if not args.checkpoint:
            raise SystemExit('test: give a checkpoint, or --teacher')
        try:
            state = extract_state_dict(
                load_checkpoint_file(args.checkpoint, role='student' if distill else None,
                                     source='the CHECKPOINT argument of tools/test.py'),
                args.checkpoint)
        except (CheckpointError, FileNotFoundError) as err:
            raise SystemExit(f'test: {err}') from None
        if distill and not any(k.startswith(STUDENT_PREFIX) for k in state):
            # a student-only checkpoint: evaluate it with the plain student config
            cfg = make_student_config(cfg)
    # the weights are loaded below, strictly; mmengine must neither load nor resume any
    cfg.load_from = None
    cfg.resume = False
    setup_launcher(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    runner = Runner.from_cfg(cfg)
    if state is not None:
        config_key = (f'`model.student.config` of {args.config!r}' if distill
                      else f'the config {args.config!r}')
        try:
            load_state_dict_strict(evaluated_model(runner), state,
                                   role='student' if distill else None,
                                   path=args.checkpoint, config_key=config_key)
        except CheckpointMismatchError as err:
            raise SystemExit(f'test: {err}') from None
        runner.logger.info(f'Loaded checkpoint {args.checkpoint} strictly')
    metrics = runner.test()
    if args.out_metrics:
        with open(args.out_metrics, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
    teardown_launcher()
    return metrics


if __name__ == '__main__':
    main()
