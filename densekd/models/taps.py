"""Taps: forward hooks that record a module's outputs by module path.

A tap records every call of its module while recording is on. What a component reads
from it is a list of *levels*: the elements of a tuple/list output (an FPN neck's five
maps), or one tensor per call when the module runs several times (a head conv shared
across FPN levels), or a single tensor.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from densekd.registry import TASK_UTILS

__all__ = ['TapError', 'ModuleTap', 'TapSet', 'StopForward', 'nearby_module_names']


class TapError(RuntimeError):
    """A tap names a missing module, recorded nothing, or recorded something unusable."""


class StopForward(Exception):
    """Raised from a hook to end a forward once every tap has what it needs."""


def nearby_module_names(model: nn.Module, path: str, limit: int = 12) -> list[str]:
    """Module paths of ``model`` that resemble ``path``.

    Close matches by spelling first, then the children of the deepest prefix of ``path``
    that exists, so ``neck.fpn_conv.0`` suggests ``neck.fpn_convs.0`` and ``neck.*``.
    """
    names = [n for n, _ in model.named_modules() if n]
    close = difflib.get_close_matches(path, names, n=limit, cutoff=0.6)
    parts = path.split('.')
    for depth in range(len(parts) - 1, -1, -1):
        prefix = '.'.join(parts[:depth])
        children = [n for n in names if n.startswith(prefix + '.' if prefix else '')
                    and n.count('.') == (prefix.count('.') + 1 if prefix else 0)]
        if children:
            close += [c for c in children if c not in close]
            break
    return close[:limit]


def _versions(tensors: list[Tensor]) -> list[int | None]:
    """Version counters; None for inference tensors, which have none (an in-place change
    inside an ``inference_mode`` forward goes unnoticed: use ``clone=True`` there)."""
    return [None if t.is_inference() else t._version for t in tensors]


@TASK_UTILS.register_module()
class ModuleTap:
    """Record the outputs of the module at ``path`` (a ``named_modules()`` name).

    Args:
        path: module path, e.g. ``'neck'``, ``'backbone.layer4'``, ``'decode_head.conv_seg'``.
        clone: copy outputs when recorded. Needed only if the model later changes the
            tapped tensor in place; without it such a change is detected and reported.
    """

    def __init__(self, path: str, clone: bool = False) -> None:
        self.path = path
        self.clone = clone
        self.expected_calls: int | None = None
        self._records: list = []
        self._versions: list[list[int]] = []
        self._recording = False
        self._handle: RemovableHandle | None = None
        self._on_record = None
        # set by attach(), for the message when nothing is recorded
        self.owner = 'model'
        self._children: list[str] = []

    def attach(self, model: nn.Module, owner: str = 'model') -> None:
        """Register the forward hook on ``model``'s submodule ``path``."""
        try:
            module = model.get_submodule(self.path)
        except AttributeError:
            near = nearby_module_names(model, self.path)
            raise TapError(f'{owner} has no module {self.path!r}; nearby modules: '
                           f'{near}') from None
        self.detach()
        self.owner = owner
        self._children = [f'{self.path}.{n}' for n, _ in module.named_children()]
        self._handle = module.register_forward_hook(self._hook)

    def detach(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module: nn.Module, args: tuple, output) -> None:
        if not self._recording:
            return
        if isinstance(output, Tensor):
            tensors = [output]
        elif isinstance(output, (tuple, list)) and all(isinstance(t, Tensor) for t in output):
            tensors = list(output)
        else:
            raise TapError(f'tap {self.path!r}: module output is a {type(output).__name__}; '
                           'taps record tensors or tuples/lists of tensors. Tap a submodule '
                           'that returns tensors.')
        if self.clone:
            tensors = [t.clone() for t in tensors]
        self._records.append(tensors)
        self._versions.append(_versions(tensors))
        if self._on_record is not None:
            self._on_record()

    def clear(self) -> None:
        """Drop everything recorded."""
        self._records = []
        self._versions = []

    def convert(self, fn: Callable[[Tensor], Tensor]) -> None:
        """Replace every recorded tensor ``t`` by ``fn(t)`` (e.g. a dtype or layout change)."""
        self._records = [[fn(t) for t in tensors] for tensors in self._records]
        self._versions = [_versions(tensors) for tensors in self._records]

    def not_recorded_message(self, context: str = 'this forward') -> str:
        """Why a tap may have recorded nothing, and what to tap instead.

        Forward hooks fire only when a module is *called* (``module(x)``). Besides a forward
        that does not reach the module, a parent that runs it as ``module.forward(x)`` or
        through another of its methods (mmdet's detectors call ``head.forward`` and
        ``head.loss``/``predict`` that way) leaves the hooks silent.

        Args:
            context: where nothing was recorded, e.g. ``"a dry run of teacher(mode='tensor')"``.
        """
        parent = self.path.rpartition('.')[0]
        parent_desc = f'its parent {parent!r}' if parent else 'the model'
        children = self._children[:6]
        instead = f'a submodule that it calls, e.g. {children}, or ' if children else ''
        return (f'{self.owner} tap {self.path!r} recorded nothing in {context}: the module '
                'exists but its forward hooks did not fire. Either the forward does not '
                'reach it (the teacher runs only as far as its taps need), or '
                f'{parent_desc} runs it as {self.path}.forward(...) or through another of '
                'its methods (mmdet calls heads that way), so hooks do not fire. Tap '
                f'{instead}{parent_desc} if it is called normally.')

    @property
    def num_calls(self) -> int:
        """How many calls were recorded since the last clear."""
        return len(self._records)

    def levels(self) -> list[Tensor]:
        """The recorded outputs as a list of levels (see the module docstring)."""
        if not self._records:
            raise TapError(self.not_recorded_message())
        for tensors, versions in zip(self._records, self._versions):
            for t, v in zip(tensors, versions):
                if v is not None and t._version != v:
                    raise TapError(f'tap {self.path!r}: the recorded output was changed in '
                                   'place after the module returned (e.g. by an inplace '
                                   'ReLU); set clone=True on the component that taps it.')
        if len(self._records) == 1:
            return list(self._records[0])
        if any(len(t) != 1 for t in self._records):
            raise TapError(f'tap {self.path!r}: the module ran {len(self._records)} times and '
                           'returned tuples; tap a submodule with a single-tensor output.')
        return [t[0] for t in self._records]


class TapSet:
    """The taps of one model, one hook per module path, shared by all components.

    Args:
        paths: module paths to tap.
        owner: ``'student'`` or ``'teacher'``, for error messages.
        clone: paths whose outputs are copied when recorded (see :class:`ModuleTap`).
    """

    def __init__(self, paths: Iterable[str], owner: str,
                 clone: Iterable[str] = ()) -> None:
        self.owner = owner
        clone = set(clone)
        self.taps: dict[str, ModuleTap] = {}
        for path in paths:
            if path not in self.taps:
                self.taps[path] = ModuleTap(path, clone=path in clone)
        self._stop_when_complete = False

    def attach(self, model: nn.Module) -> None:
        """Hook every tap into ``model``."""
        for tap in self.taps.values():
            tap.attach(model, self.owner)
            tap._on_record = self._check_complete

    def detach(self) -> None:
        """Remove every hook."""
        for tap in self.taps.values():
            tap.detach()

    def set_expected_calls(self) -> None:
        """Freeze the call count of each tap from the last recording (the build-time dry run)."""
        for tap in self.taps.values():
            tap.expected_calls = tap.num_calls

    def _check_complete(self) -> None:
        if self._stop_when_complete and all(
                t.expected_calls is not None and t.num_calls >= t.expected_calls
                for t in self.taps.values()):
            raise StopForward

    @contextmanager
    def recording(self, stop_when_complete: bool = False) -> Iterator[TapSet]:
        """Record during the ``with`` block; buffers are cleared on entry.

        Args:
            stop_when_complete: raise :class:`StopForward` from the hook as soon as every tap
                has recorded as many calls as in the dry run, so the rest of the forward is
                skipped. The caller catches it.
        """
        for tap in self.taps.values():
            tap.clear()
            tap._recording = True
        self._stop_when_complete = stop_when_complete and bool(self.taps)
        try:
            yield self
        finally:
            self._stop_when_complete = False
            for tap in self.taps.values():
                tap._recording = False

    def check_recorded(self, context: str) -> None:
        """Raise :class:`TapError` if a tap recorded nothing (see
        :meth:`ModuleTap.not_recorded_message`).

        Args:
            context: where, for the message, e.g. ``"a dry run of teacher(mode='tensor')"``.
        """
        for tap in self.taps.values():
            if tap.num_calls == 0:
                raise TapError(tap.not_recorded_message(context))

    def convert(self, fn: Callable[[Tensor], Tensor]) -> None:
        """Apply ``fn`` to every recorded tensor of every tap."""
        for tap in self.taps.values():
            tap.convert(fn)

    def levels(self, path: str) -> list[Tensor]:
        """The levels recorded by the tap on ``path``."""
        return self.taps[path].levels()

    def clear(self) -> None:
        """Release every recorded tensor."""
        for tap in self.taps.values():
            tap.clear()

    def __len__(self) -> int:
        return len(self.taps)
