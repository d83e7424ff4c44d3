"""Evaluate a checkpoint: the student by default, the teacher with --teacher.

    python tools/test.py CONFIG work_dirs/X/epoch_24.pth            # distilled student
    python tools/test.py CONFIG work_dirs/X/epoch_24_student.pth    # student-only file
    python tools/test.py CONFIG --teacher                           # the teacher
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, os.getcwd())  # so custom_imports can name modules of the current project
import densekd  # noqa: E402,F401
from densekd.utils.checkpoint import extract_state_dict, load_checkpoint_file  # noqa: E402
from densekd.utils.config import is_distillation_config, make_student_config  # noqa: E402
from densekd.utils.launch import setup_launcher, teardown_launcher  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a (distilled) detector or segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (not needed with --teacher)')
    parser.add_argument('--teacher', action='store_true',
                        help='evaluate the teacher of a distillation config')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out-metrics', help='write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.teacher:
        if not is_distillation_config(cfg):
            raise SystemExit('--teacher needs a distillation config (model.type '
                             'densekd.DistillationModel)')
        cfg.model.predict_with = 'teacher'
        cfg.load_from = None
    else:
        if not args.checkpoint:
            raise SystemExit('give a checkpoint, or --teacher')
        if is_distillation_config(cfg):
            state = extract_state_dict(load_checkpoint_file(args.checkpoint))
            if not any(k.startswith('student.') for k in state):
                # a student-only checkpoint: evaluate it with the plain student config
                cfg = make_student_config(cfg)
        cfg.load_from = args.checkpoint
    setup_launcher(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if args.out_metrics:
        with open(args.out_metrics, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)
    teardown_launcher()


if __name__ == '__main__':
    main()
