"""Checkpoint helpers: safe loading, teacher weights, student-only export.

torch>=2.6 loads with ``weights_only=True``. mmengine's checkpoints carry a
``message_hub`` of ``HistoryBuffer`` objects holding numpy arrays (and, through
``HistoryBuffer.__getstate__``, ``getattr(HistoryBuffer, 'min')`` calls), which the safe
unpickler refuses; :func:`allow_mmengine_checkpoint_globals` adds exactly those pieces to
torch's allowlist so that ``resume`` and ``load_from`` keep working with safety on.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    'allow_mmengine_checkpoint_globals', 'load_checkpoint_file', 'extract_state_dict',
    'load_weights_strict', 'student_state_dict', 'export_student_checkpoint',
    'student_checkpoint_path',
]

STUDENT_PREFIX = 'student.'


def allow_mmengine_checkpoint_globals() -> None:
    """Allowlist the classes that mmengine checkpoints pickle, for ``weights_only`` loads.

    Adds mmengine's ``HistoryBuffer`` and the numpy pieces an ``ndarray`` or numpy scalar
    pickles to (``_reconstruct``, ``ndarray``, ``dtype`` and the concrete dtype classes,
    ``scalar``). Nothing is turned off: any other global still raises.
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
    add([HistoryBuffer, multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
         *sorted(dtype_classes, key=lambda c: c.__name__)])
    # HistoryBuffer.__getstate__ pickles its statistics methods as getattr(HistoryBuffer,
    # 'min') etc. A plain `getattr` on the allowlist would open every attribute of every
    # allowed object; this stand-in resolves exactly those four names and nothing else.
    add([(_history_buffer_getattr, 'builtins.getattr')])
    # checkpoints written under numpy 1.x name the same functions numpy.core.multiarray.*
    add([(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
         (multiarray.scalar, 'numpy.core.multiarray.scalar')])


_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as a safe-load global: only ``HistoryBuffer.<min|max|current|mean>``."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); densekd only allows '
        f'HistoryBuffer.{{{",".join(_HISTORY_BUFFER_METHODS)}}} with weights_only loading')


def load_checkpoint_file(path: str) -> dict[str, Any]:
    """Load a checkpoint on CPU with torch's safe unpickler (``weights_only=True``).

    Args:
        path: a local file, or an ``http(s)://`` URL (downloaded once into torch's hub cache,
            then loaded with the same safe unpickler).

    Returns:
        The loaded object (normally a dict with ``state_dict`` and ``meta``).
    """
    if osp.isfile(path):
        return torch.load(path, map_location='cpu', weights_only=True)
    if path.startswith(('http://', 'https://')):
        return torch.hub.load_state_dict_from_url(path, map_location='cpu', weights_only=True)
    if '://' in path:
        raise ValueError(f'checkpoint {path!r}: densekd loads local files and http(s) URLs '
                         'only; download it first (other schemes would bypass safe loading)')
    raise FileNotFoundError(f'checkpoint {path!r} does not exist')


def extract_state_dict(checkpoint: dict[str, Any]) -> OrderedDict:
    """The model weights of a checkpoint, with DDP ``module.`` prefixes removed."""
    state = checkpoint.get('state_dict', checkpoint.get('model', checkpoint))
    out = OrderedDict()
    for key, value in state.items():
        out[key[len('module.'):] if key.startswith('module.') else key] = value
    metadata = getattr(state, '_metadata', None)
    if metadata is not None:  # torch's per-module versions, for state-dict migrations
        out._metadata = OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else k, v) for k, v in metadata.items())
    return out


def load_weights_strict(model: nn.Module, path: str, role: str = 'teacher') -> None:
    """Load ``path`` into ``model`` strictly, explaining any mismatch.

    A densekd distillation checkpoint is accepted too: its ``student.*`` weights are used
    (a distilled student can teach the next one, or initialise another run).

    Args:
        model: the teacher or student.
        path: checkpoint path or URL.
        role: ``'teacher'`` or ``'student'``, for the error message.

    Raises:
        KeyError: listing missing keys, unexpected keys and shape mismatches.
    """
    state = extract_state_dict(load_checkpoint_file(path))
    own = model.state_dict()
    if not any(k in state for k in own) and any(k.startswith(STUDENT_PREFIX) for k in state):
        state = student_state_dict(state)
    # like mmengine, a BN's num_batches_tracked may be absent (older or converted files)
    missing = [k for k in own if k not in state and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    shape = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shape:
        def head(items: list[str]) -> str:
            more = f' ... and {len(items) - 8} more' if len(items) > 8 else ''
            return ', '.join(items[:8]) + more

        lines = [f'{role} checkpoint {path!r} does not match the {role} model:']
        if missing:
            lines.append(f'  missing in checkpoint ({len(missing)}): {head(missing)}')
        if unexpected:
            lines.append(f'  not in the model ({len(unexpected)}): {head(unexpected)}')
        if shape:
            lines.append(f'  shape mismatch ({len(shape)}): {head(shape)}')
        lines.append(f'  Check that `{role}.config` is the config the checkpoint was trained '
                     'with (depth, widths, number of classes).')
        raise KeyError('\n'.join(lines))
    model.load_state_dict(state, strict=False)  # every other key was checked above


def student_state_dict(state: dict[str, torch.Tensor]) -> OrderedDict:
    """The ``student.*`` entries of a distillation state dict, prefix stripped."""
    out = OrderedDict((k[len(STUDENT_PREFIX):], v) for k, v in state.items()
                      if k.startswith(STUDENT_PREFIX))
    if not out:
        raise KeyError('no `student.` weights in this checkpoint; is it a densekd '
                       'distillation checkpoint?')
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
        dst: output path; default ``<src stem>_student.pth`` beside ``src``.

    Returns:
        The path written.
    """
    checkpoint = load_checkpoint_file(src)
    state = student_state_dict(extract_state_dict(checkpoint))
    meta = checkpoint.get('meta', {}) or {}
    out_meta: dict[str, Any] = {'densekd_source': osp.abspath(src)}
    for key in ('epoch', 'iter', 'dataset_meta', 'mmengine_version'):
        if key in meta:
            out_meta[key] = meta[key]
    dst = dst or student_checkpoint_path(src)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save({'meta': out_meta, 'state_dict': state}, tmp)
    os.replace(tmp, dst)
    return dst
