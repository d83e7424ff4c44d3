"""Write the student-only checkpoint (and plain config) of a distillation checkpoint.

    python tools/export_student.py work_dirs/X/epoch_24.pth [--out s.pth] [--config CFG]

The result loads in plain mmdet/mmseg (``init_detector``/``init_model``, their test tools,
``load_from``) without densekd. ``--config`` also writes ``<out stem>_config.py``, the
student's plain config. Neither may replace an input: ``--out`` naming the checkpoint
itself, or a student config path naming ``--config``, is refused (exit code 1, nothing
written).
"""
from __future__ import annotations

import argparse
import os.path as osp

from mmengine.config import Config

import densekd  # noqa: F401
from densekd.utils.checkpoint import (
    CheckpointError,
    export_student_checkpoint,
    student_checkpoint_path,
)
from densekd.utils.config import make_student_config


def main(argv: list[str] | None = None) -> str:
    """Run the tool.

    Args:
        argv: the command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The path of the student checkpoint written.

    Raises:
        SystemExit: with the error message (exit code 1) when the checkpoint is missing, is
            not a distillation checkpoint, or an output would replace an input.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint', help='densekd distillation checkpoint')
    parser.add_argument('--out', help='output path (default: <checkpoint>_student.pth)')
    parser.add_argument('--config', help='the distillation config, to write the student config')
    args = parser.parse_args(argv)
    out = args.out or student_checkpoint_path(args.checkpoint)
    cfg_path = osp.splitext(out)[0] + '_config.py'
    if args.config and osp.realpath(cfg_path) == osp.realpath(args.config):
        raise SystemExit(f'export_student: the student config would be written to {cfg_path!r}, '
                         'the distillation config given with --config; give another --out')
    try:
        dst = export_student_checkpoint(args.checkpoint, out)
    except (CheckpointError, FileNotFoundError) as err:  # CheckpointMismatchError included
        raise SystemExit(f'export_student: {err}') from None
    print(f'student checkpoint: {dst}')
    if args.config:
        make_student_config(Config.fromfile(args.config)).dump(cfg_path)
        print(f'student config: {cfg_path}')
    return dst


if __name__ == '__main__':
    main()
