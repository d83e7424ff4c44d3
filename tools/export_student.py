"""Write the student-only checkpoint (and plain config) of a distillation checkpoint.

    python tools/export_student.py work_dirs/X/epoch_24.pth [--out s.pth] [--config CFG]

The result loads in plain mmdet/mmseg (``init_detector``/``init_model``, their test tools,
``load_from``) without densekd. ``--config`` also writes ``<out stem>_config.py``, the
student's plain config.
"""
import argparse
import os.path as osp

from mmengine.config import Config

import densekd  # noqa: F401
from densekd.utils.checkpoint import export_student_checkpoint
from densekd.utils.config import make_student_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='densekd distillation checkpoint')
    parser.add_argument('--out', help='output path (default: <checkpoint>_student.pth)')
    parser.add_argument('--config', help='the distillation config, to write the student config')
    args = parser.parse_args()
    dst = export_student_checkpoint(args.checkpoint, args.out)
    print(f'student checkpoint: {dst}')
    if args.config:
        cfg_path = osp.splitext(dst)[0] + '_config.py'
        make_student_config(Config.fromfile(args.config)).dump(cfg_path)
        print(f'student config: {cfg_path}')


if __name__ == '__main__':
    main()
