"""Train a model from a config: a distillation config or any plain mmdet/mmseg config.

    python tools/train.py configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py
    python tools/train.py CONFIG --resume            # resume the latest checkpoint (or fail)
    python tools/train.py CONFIG --resume auto       # resume it if there is one, else start
    python tools/train.py CONFIG --resume CKPT       # resume this checkpoint
    bash tools/dist_train.sh CONFIG 2                # 2 processes (GPUs, or CPU via gloo)
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, os.getcwd())  # so custom_imports can name modules of the current project
import densekd  # noqa: E402,F401  (registries, safe-load allowlist)
from densekd.utils.launch import setup_launcher, teardown_launcher  # noqa: E402
from densekd.utils.resume import AUTO, LATEST, ResumeError, resolve_resume  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a (distilled) detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--resume', nargs='?', type=str, const=LATEST, metavar='CKPT|auto',
        help='resume from the checkpoint named in WORK_DIR/last_checkpoint (an error if there '
             'is none), from CKPT, or with "auto" from the latest one if any (else start)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. model.teacher.checkpoint=teacher.pth')
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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    try:  # checked before any process group exists, so every rank exits cleanly
        resume_from = resolve_resume(args.resume, osp.abspath(cfg.work_dir))
    except ResumeError as err:
        sys.exit(f'error: {err}')
    if args.resume == AUTO and int(os.environ.get('RANK', '0')) == 0:
        print(f'--resume auto: resuming from {resume_from}' if resume_from else
              f'--resume auto: no checkpoint in {cfg.work_dir}, starting from the beginning')
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    setup_launcher(cfg, args.launcher)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    runner = Runner.from_cfg(cfg)
    runner.train()
    teardown_launcher()


if __name__ == '__main__':
    main()
