"""What ``tools/train.py --resume`` resumes from, checked before the Runner is built.

mmengine's ``resume=True`` with nothing to resume logs "Auto resumed from the latest
checkpoint None." and trains from the first epoch; a truncated last checkpoint fails deep in
``torch.load``. :func:`resolve_resume` turns the ``--resume`` argument into the checkpoint to
resume from, or a :class:`ResumeError` that says where it looked and what to do:

* ``--resume`` (no value): the checkpoint named by ``WORK_DIR/last_checkpoint`` (written by
  mmengine's ``CheckpointHook`` with every save); an error when there is none.
* ``--resume auto``: that checkpoint if there is one, else a fresh start (mmengine's
  behaviour), said on stdout either way.
* ``--resume PATH``: that checkpoint; an error when it does not exist.

Every local checkpoint is checked to be readable first; an unreadable one is reported with
the newest readable ``epoch_*.pth`` / ``iter_*.pth`` beside it as the way back.
"""
from __future__ import annotations

import os
import os.path as osp
import re
import zipfile

__all__ = ['LATEST', 'AUTO', 'ResumeError', 'resolve_resume', 'checkpoint_problem',
           'previous_checkpoints']

LATEST = ''  # the value of a bare ``--resume``
AUTO = 'auto'
_NUMBERED = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


class ResumeError(RuntimeError):
    """There is nothing to resume from, or the checkpoint to resume from is unusable."""


def checkpoint_problem(path: str) -> str | None:
    """Why ``path`` is not a readable checkpoint, or None if it is.

    torch checkpoints are zip archives: the archive is opened and the CRC of every member
    checked (one read of the file, no unpickling). A file that is not a zip archive (a
    truncated one has lost its central directory, or a legacy-format save) is loaded with
    densekd's safe loader instead.

    Args:
        path: a local file.

    Returns:
        None, or a short reason.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f'member {bad!r} fails its CRC check'
        from .checkpoint import load_checkpoint_file

        load_checkpoint_file(path)
    except Exception as err:  # any failure to read means the same thing here
        return f'{type(err).__name__}: {err}'
    return None


def previous_checkpoints(work_dir: str, before: str | None = None) -> list[str]:
    """The ``epoch_N.pth`` / ``iter_N.pth`` files of ``work_dir``, newest first.

    Args:
        work_dir: the directory to list.
        before: a checkpoint path; if given, only files with a smaller N than its own (all
            other files if its name has no N) are returned, and never ``before`` itself.

    Returns:
        Paths, sorted by N descending (``_student.pth`` exports are not checkpoints to
        resume from and are left out).
    """
    if not osp.isdir(work_dir):
        return []
    limit = None
    if before is not None:
        match = _NUMBERED.match(osp.basename(before))
        limit = int(match.group(2)) if match else None
    found = []
    for name in os.listdir(work_dir):
        match = _NUMBERED.match(name)
        if match is None:
            continue
        number = int(match.group(2))
        path = osp.join(work_dir, name)
        if before is not None and osp.abspath(path) == osp.abspath(before):
            continue
        if limit is not None and number >= limit:
            continue
        found.append((number, path))
    return [p for _, p in sorted(found, reverse=True)]


def _check_readable(path: str) -> None:
    """Raise :class:`ResumeError` naming the newest readable earlier checkpoint."""
    problem = checkpoint_problem(path)
    if problem is None:
        return
    msg = f'{path} is not a readable checkpoint (truncated?): {problem}.'
    for prev in previous_checkpoints(osp.dirname(osp.abspath(path)), before=path):
        if checkpoint_problem(prev) is None:
            raise ResumeError(f'{msg} Resume from the previous one with --resume {prev}')
    raise ResumeError(f'{msg} There is no readable earlier checkpoint beside it; train '
                      'again without --resume.')


def _last_checkpoint(work_dir: str) -> tuple[str, str | None]:
    """``(the last_checkpoint file, the checkpoint path it names or None)``."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return record, None
    with open(record) as f:
        path = f.read().strip()
    if not path:
        return record, None
    if '://' not in path and not osp.isfile(path):
        moved = osp.join(work_dir, osp.basename(path))  # the work dir was moved or copied
        if osp.isfile(moved):
            return record, moved
        raise ResumeError(f'{record} names {path}, which does not exist. Resume from another '
                          'checkpoint with --resume PATH' + _listing(work_dir))
    return record, path


def _listing(work_dir: str) -> str:
    found = previous_checkpoints(work_dir)
    return f' (in {work_dir}: {", ".join(osp.basename(p) for p in found)})' if found else ''


def resolve_resume(resume: str | None, work_dir: str) -> str | None:
    """The checkpoint a run resumes from, checked.

    Args:
        resume: the ``--resume`` argument: None (not given), :data:`LATEST` (given without
            a value), :data:`AUTO` (``'auto'``) or a checkpoint path or URL.
        work_dir: the run's work dir, where ``last_checkpoint`` is looked for.

    Returns:
        The checkpoint to resume from, or None to start from the beginning (no ``--resume``,
        or ``--resume auto`` with nothing to resume).

    Raises:
        ResumeError: ``--resume`` with no ``last_checkpoint`` in ``work_dir``, a ``PATH``
            that does not exist, or an unreadable checkpoint; the message names the files
            looked at and the way on.
    """
    if resume is None:
        return None
    if resume not in (LATEST, AUTO):
        if '://' in resume:
            return resume  # remote: mmengine's file backends read it
        if not osp.isfile(resume):
            raise ResumeError(f'--resume {resume}: no such file'
                              + (f' (relative to {osp.abspath(".")})'
                                 if not osp.isabs(resume) else ''))
        _check_readable(resume)
        return resume
    record, path = _last_checkpoint(work_dir)
    if path is None:
        if resume == AUTO:
            return None
        raise ResumeError(
            f'--resume: nothing to resume in work dir {work_dir}: {record} does not exist or '
            'is empty (mmengine writes it with the first checkpoint). Train without --resume, '
            'use --resume auto to resume only when there is a checkpoint, or --resume PATH'
            + _listing(work_dir))
    if '://' not in path:
        _check_readable(path)
    return path
