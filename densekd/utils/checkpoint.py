"""Checkpoint helpers: safe loading, teacher weights, student-only export.

Every checkpoint densekd or mmengine's Runner reads is loaded with ``weights_only=True`` and
never retried unsafely. mmengine's checkpoints carry a ``message_hub`` of ``HistoryBuffer``
objects holding numpy arrays (and, through ``HistoryBuffer.__getstate__``,
``getattr(HistoryBuffer, 'min')`` calls), which the safe unpickler refuses;
:func:`allow_mmengine_checkpoint_globals` adds exactly those pieces to torch's allowlist, and
:func:`use_safe_checkpoint_loading` (run at ``import densekd``) also makes mmengine's
``CheckpointLoader`` read local files and http(s) URLs with :func:`load_checkpoint_file`, so
``load_from``, ``resume`` and ``init_cfg`` checkpoints get the same loader whichever
mmengine is installed (OneDL's fork retries a refused file with ``weights_only=False``).
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'allow_mmengine_checkpoint_globals',
    'use_safe_checkpoint_loading', 'load_checkpoint_file', 'load_from_local_weights_only',
    'load_from_http_weights_only', 'extract_state_dict', 'load_state_dict_strict',
    'load_weights_strict', 'student_state_dict', 'export_student_checkpoint',
    'student_checkpoint_path',
]

STUDENT_PREFIX = 'student.'
EXPECTED_CHECKPOINT = (
    'expected a file written by torch.save holding a dict: an mmengine checkpoint '
    "({'state_dict': ..., 'meta': ...}) or a state dict (torch.save(model.state_dict(), path))")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used as asked (unreadable, not a weights dict).

    Its message may span several lines and prints as real lines.
    """


class CheckpointMismatchError(CheckpointError, KeyError):
    """A checkpoint whose keys or shapes do not match the model it is loaded into.

    Also a ``KeyError``, the type this error had before, so callers catching that still
    work; unlike a plain ``KeyError`` its message prints as lines, not as a quoted repr.
    """

    __str__ = BaseException.__str__


def _described(path: str, role: str | None) -> str:
    """``"teacher checkpoint 'x.pth'"``, or ``"checkpoint 'x.pth'"`` without a role."""
    return f'{role} checkpoint {path!r}' if role else f'checkpoint {path!r}'


def _named(obj: Any) -> tuple[Any, str]:
    """``(obj, 'module.qualname')``: the name a pickle refers to ``obj`` by."""
    return obj, f'{obj.__module__}.{obj.__qualname__}'


def allow_mmengine_checkpoint_globals() -> None:
    """Allowlist the classes that mmengine checkpoints pickle, for ``weights_only`` loads.

    Adds mmengine's ``HistoryBuffer`` and the numpy pieces an ``ndarray`` or numpy scalar
    pickles to (``_reconstruct``, ``ndarray``, ``dtype`` and the concrete dtype classes,
    ``scalar``). Nothing is turned off: any other global still raises.

    Each entry is registered as an ``(object, 'module.qualname')`` pair. A
    ``torch.serialization.safe_globals([...])`` block removes the objects it lists from the
    process-wide allowlist when it exits, bare entries added by ``add_safe_globals``
    included (OneDL's mmengine loads inside such a block listing ``HistoryBuffer`` and the
    numpy classes); a pair is a different entry and stays. Calling this again is harmless.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 has no allowlist and does not default to weights_only
        return
    from mmengine.logging import HistoryBuffer

    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    dtype_classes = {type(np.dtype(t)) for t in (
        np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
        np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}
    add([_named(obj) for obj in (
        HistoryBuffer, multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
        *sorted(dtype_classes, key=lambda c: c.__name__))])
    # HistoryBuffer.__getstate__ pickles its statistics methods as getattr(HistoryBuffer,
    # 'min') etc. A plain `getattr` on the allowlist would open every attribute of every
    # allowed object; this stand-in resolves exactly those four names and nothing else.
    add([(_history_buffer_getattr, 'builtins.getattr')])
    # checkpoints written under numpy 1.x name the same functions numpy.core.multiarray.*
    add([(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
         (multiarray.scalar, 'numpy.core.multiarray.scalar')])


def use_safe_checkpoint_loading() -> None:
    """Allowlist mmengine's checkpoint classes and make mmengine load through densekd.

    Registers :func:`load_from_local_weights_only` for local paths (mmengine's prefix
    ``''``) and :func:`load_from_http_weights_only` for ``http://``/``https://`` in
    ``mmengine.runner.checkpoint.CheckpointLoader``, replacing mmengine's loaders there, so
    the Runner's ``load_from`` and ``resume`` and a model's ``init_cfg`` checkpoint are read
    with ``weights_only=True`` and no unsafe retry. Runs at ``import densekd``; idempotent.
    Other schemes (``open-mmlab://``, ``torchvision://``, ``s3://``, ``pavi://``) keep
    mmengine's loaders.
    """
    allow_mmengine_checkpoint_globals()
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only,
                                     force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                     loader=load_from_http_weights_only, force=True)


def load_from_local_weights_only(filename: str, map_location: Any = None) -> dict[str, Any]:
    """mmengine's local-file checkpoint loader, with :func:`load_checkpoint_file`.

    mmengine logs the loader by its name after ``load_from_`` ("Loads checkpoint by
    local_weights_only backend").

    Args:
        filename: a local path (``~`` is expanded, as mmengine does).
        map_location: as for ``torch.load``; None loads on CPU.

    Returns:
        The loaded checkpoint dict.
    """
    return load_checkpoint_file(osp.expanduser(filename), map_location=map_location)


def load_from_http_weights_only(filename: str, map_location: Any = None) -> dict[str, Any]:
    """mmengine's http(s) checkpoint loader, with :func:`load_checkpoint_file`.

    As in mmengine, the first process of a distributed run downloads (into torch's hub
    cache) before the others read the cached file.

    Args:
        filename: an ``http://`` or ``https://`` URL.
        map_location: as for ``torch.load``; None loads on CPU.

    Returns:
        The loaded checkpoint dict.
    """
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load_checkpoint_file(filename, map_location=map_location)
    return checkpoint


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as a safe-load global: only ``HistoryBuffer.<min|max|current|mean>``."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); densekd only allows '
        f'HistoryBuffer.{{{",".join(_HISTORY_BUFFER_METHODS)}}} with weights_only loading')


def load_checkpoint_file(path: str, *, role: str | None = None, source: str | None = None,
                         map_location: Any = None) -> dict[str, Any]:
    """Load a checkpoint with torch's safe unpickler (``weights_only=True``), never unsafely.

    The allowlist of :func:`allow_mmengine_checkpoint_globals` is (re-)added first, so a
    ``safe_globals`` block or ``clear_safe_globals`` elsewhere in the process cannot take it
    away. A file the safe unpickler refuses raises; it is never retried with
    ``weights_only=False``.

    Args:
        path: a local file, or an ``http(s)://`` URL (downloaded once into torch's hub cache,
            then loaded with the same safe unpickler).
        role: whose checkpoint it is (``'teacher'``, ``'student'``), named in errors.
        source: where ``path`` was given (e.g. ``'`model.teacher.checkpoint` in the
            config'``), named in errors as the thing to fix.
        map_location: as for ``torch.load``; None loads on CPU.

    Returns:
        The loaded dict (normally with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is empty or truncated, or does not hold a dict.
        ValueError: a URL scheme other than http(s).
        pickle.UnpicklingError: the file pickles something outside the allowlist (torch's
            message names it).
    """
    allow_mmengine_checkpoint_globals()
    map_location = 'cpu' if map_location is None else map_location
    what = _described(path, role)
    fix = f'; check {source}' if source else ''
    if osp.isfile(path):
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True)
        except EOFError as err:  # empty, or cut off inside a legacy (non-zip) pickle
            cause = f'{type(err).__name__}: {err}' if str(err) else type(err).__name__
            raise CheckpointError(
                f'{what} is empty or truncated ({osp.getsize(path)} bytes, {cause}); '
                f'{EXPECTED_CHECKPOINT}. Copy or download it again{fix}.') from err
        except RuntimeError as err:
            if 'PytorchStreamReader' not in str(err):
                raise
            raise CheckpointError(
                f'{what} is a damaged or truncated zip archive ({err}); '
                f'{EXPECTED_CHECKPOINT}. Copy or download it again{fix}.') from err
    elif path.startswith(('http://', 'https://')):
        obj = torch.hub.load_state_dict_from_url(path, map_location=map_location,
                                                 weights_only=True)
    elif '://' in path:
        raise ValueError(f'{what}: densekd loads local files and http(s) URLs only; '
                         'download it first (other schemes would bypass safe loading)')
    else:
        where = f'Check {source}.' if source else 'Check the path.'
        raise FileNotFoundError(f'{what} does not exist (no such file: '
                                f'{osp.abspath(path)!r}). {where}')
    if not isinstance(obj, Mapping):
        kind = type(obj).__qualname__
        if type(obj).__module__ != 'builtins':
            kind = f'{type(obj).__module__}.{kind}'
        raise CheckpointError(f'{what} holds a {kind}, not a checkpoint; '
                              f'{EXPECTED_CHECKPOINT}{fix}.')
    return obj


def extract_state_dict(checkpoint: Mapping[str, Any], path: str | None = None) -> OrderedDict:
    """The model weights of a checkpoint, with DDP ``module.`` prefixes removed.

    Args:
        checkpoint: a loaded checkpoint: a dict with ``state_dict`` (mmengine) or ``model``,
            or a state dict itself.
        path: the file it came from, named in errors.

    Returns:
        The state dict.

    Raises:
        CheckpointError: ``checkpoint`` or its ``state_dict`` / ``model`` entry is not a dict.
    """
    what = _described(path, None) if path else 'checkpoint'
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{what} is a {type(checkpoint).__name__}, not a checkpoint; '
                              f'{EXPECTED_CHECKPOINT}.')
    state = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
    if not isinstance(state, Mapping):
        key = 'state_dict' if 'state_dict' in checkpoint else 'model'
        raise CheckpointError(f'{what}: its {key!r} entry is a {type(state).__name__}, not a '
                              f'dict of weights; {EXPECTED_CHECKPOINT}.')
    out = OrderedDict()
    for key, value in state.items():
        out[key[len('module.'):] if key.startswith('module.') else key] = value
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:  # torch's per-module versions, for state-dict migrations
        out._metadata = OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else k, v) for k, v in metadata.items())
    return out


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *,
                           role: str | None = 'teacher', path: str = '<state dict>',
                           config_key: str | None = None) -> None:
    """Load ``state`` into ``model`` strictly, explaining any mismatch.

    A densekd distillation state dict is accepted too: when none of the model's keys are in
    ``state`` but ``student.*`` keys are, those are used (a distilled student can teach the
    next one, initialise another run, or be evaluated with its plain config).

    Args:
        model: the model to fill (the teacher, the student, or any model to evaluate).
        state: the weights, e.g. from :func:`extract_state_dict`.
        role: ``'teacher'``, ``'student'`` or None (a plain model), for the error message.
        path: the file the weights came from, for the error message.
        config_key: what describes the model, named in the error as the thing to check;
            default ``'`model.<role>.config`'`` (``"the model's config"`` without a role).

    Raises:
        CheckpointMismatchError: listing missing keys, unexpected keys and shape mismatches.
    """
    own = model.state_dict()
    if not any(k in state for k in own) and any(k.startswith(STUDENT_PREFIX) for k in state):
        state = student_state_dict(state)
    # like mmengine, a BN's num_batches_tracked may be absent (older or converted files)
    missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    shape = [f'{k}: checkpoint {_shape(state[k])} vs model {tuple(own[k].shape)}'
             for k in own if k in state and _shape(state[k]) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        def head(items: list[str]) -> str:
            more = f' ... and {len(items) - 8} more' if len(items) > 8 else ''
            return ', '.join(items[:8]) + more

        default_key = f'`model.{role}.config`' if role else "the model's config"
        config_key = config_key or default_key
        target = f'the {role} model' if role else 'the model'
        lines = [f'{_described(path, role)} does not match {target}:']
        if missing:
            lines.append(f'  missing in checkpoint ({len(missing)}): {head(missing)}')
        if unexpected:
            lines.append(f'  not in the model ({len(unexpected)}): {head(unexpected)}')
        if shape:
            lines.append(f'  shape mismatch ({len(shape)}): {head(shape)}')
        lines.append(f'  Check that {config_key} is the config the checkpoint was trained '
                     'with (depth, widths, number of classes).')
        raise CheckpointMismatchError('\n'.join(lines))
    model.load_state_dict(state, strict=False)  # every other key was checked above


def _shape(value: Any) -> tuple[int, ...] | str:
    """A tensor's shape as a tuple; a non-tensor entry's type name (never equal to a shape)."""
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def load_weights_strict(model: nn.Module, path: str, role: str = 'teacher', *,
                        checkpoint_key: str | None = None,
                        config_key: str | None = None) -> None:
    """Load the checkpoint ``path`` into ``model`` strictly, explaining any mismatch.

    The file is read with :func:`load_checkpoint_file` (safe unpickling); a densekd
    distillation checkpoint is accepted too (its ``student.*`` weights, see
    :func:`load_state_dict_strict`).

    Args:
        model: the teacher or student.
        path: checkpoint path or URL.
        role: ``'teacher'`` or ``'student'``, for the error messages.
        checkpoint_key: where ``path`` was given, named when the file is missing or
            unreadable; default ``'`model.<role>.checkpoint` in the config'``.
        config_key: what describes the model, named on a mismatch; default
            ``'`model.<role>.config`'``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names ``checkpoint_key``).
        CheckpointError: the file is not a checkpoint.
        CheckpointMismatchError: listing missing keys, unexpected keys and shape mismatches.
    """
    source = checkpoint_key or f'`model.{role}.checkpoint` in the config'
    checkpoint = load_checkpoint_file(path, role=role, source=source)
    load_state_dict_strict(model, extract_state_dict(checkpoint, path), role=role, path=path,
                           config_key=config_key)


def student_state_dict(state: Mapping[str, torch.Tensor],
                       path: str | None = None) -> OrderedDict:
    """The ``student.*`` entries of a distillation state dict, prefix stripped.

    Args:
        state: a distillation model's state dict.
        path: the file it came from, named in errors.

    Returns:
        The student's state dict.

    Raises:
        CheckpointMismatchError: ``state`` has no ``student.*`` entry.
    """
    out = OrderedDict((k[len(STUDENT_PREFIX):], v) for k, v in state.items()
                      if k.startswith(STUDENT_PREFIX))
    if not out:
        what = _described(path, None) if path else 'this checkpoint'
        raise CheckpointMismatchError(
            f'no `student.` weights in {what}; expected a densekd distillation checkpoint '
            '(the epoch_N.pth / iter_N.pth of a tools/train.py run)')
    return out


def student_checkpoint_path(path: str) -> str:
    """``work_dir/epoch_24.pth`` -> ``work_dir/epoch_24_student.pth``."""
    root, ext = osp.splitext(path)
    return f'{root}_student{ext or ".pth"}'


def export_student_checkpoint(src: str, dst: str | None = None) -> str:
    """Write the student-only checkpoint of a distillation checkpoint.

    The result holds ``state_dict`` (student weights, keys as in the plain student) and
    ``meta`` (``dataset_meta``, epoch, iter and the source path), all plain Python types and
    tensors, so plain mmdet/mmseg (``init_detector``/``init_model``, their test tools and
    ``load_from``) read it with ``weights_only=True`` and without densekd.

    Args:
        src: a densekd distillation checkpoint.
        dst: output path; default ``<src stem>_student.pth`` beside ``src``. Never ``src``
            itself (also not through a symlink, a hard link or another spelling of the path).

    Returns:
        The path written.

    Raises:
        CheckpointError: ``dst`` is ``src``, or ``src`` is not a checkpoint.
        CheckpointMismatchError: ``src`` has no ``student.*`` weights.
    """
    dst = dst or student_checkpoint_path(src)
    if _same_file(src, dst):
        raise CheckpointError(
            f'the output {dst!r} is the distillation checkpoint {src!r} itself; writing the '
            'student-only checkpoint there would destroy it (components, optimizer and '
            'training state). Give another output path (`--out` of tools/export_student.py), '
            f'e.g. the default {student_checkpoint_path(src)!r}.')
    checkpoint = load_checkpoint_file(src)
    state = student_state_dict(extract_state_dict(checkpoint, src), src)
    meta = checkpoint.get('meta', {}) or {}
    out_meta: dict[str, Any] = {'densekd_source': osp.abspath(src)}
    for key in ('epoch', 'iter', 'dataset_meta', 'mmengine_version'):
        if key in meta:
            out_meta[key] = meta[key]
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save({'meta': out_meta, 'state_dict': state}, tmp)
    os.replace(tmp, dst)
    return dst


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (same resolved path, or hard links of one file)."""
    if osp.realpath(a) == osp.realpath(b):
        return True
    try:
        return osp.samefile(a, b)
    except OSError:  # one of them does not exist
        return False
