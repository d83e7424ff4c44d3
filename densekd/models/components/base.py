"""The contract every distillation component follows.

A component names the student and teacher taps it reads, is sized once from the shapes a
build-time dry run records (so configs never state channel counts), and returns a dict of
``loss_*`` tensors each step. The distillation model prefixes them with
``distill.<component name>.`` and scales them by the distillation weight schedule.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['DistillComponent', 'TapShapes', 'TapLevels']

TapShapes = dict[str, list[torch.Size]]
TapLevels = dict[str, list[Tensor]]


class DistillComponent(BaseModule):
    """Base class of distillation components.

    Subclasses set :attr:`student_taps` and :attr:`teacher_taps` (module paths) in
    ``__init__``, build their trainable parts in :meth:`setup`, and implement
    :meth:`forward`.

    Attributes:
        taps_only: True when :meth:`forward` reads nothing of the step but the tap levels
            and data samples it is given, so it can be replayed on recorded levels (the
            benchmark's ``components`` variant). Components that also read state recorded
            by hooks of their own (DETRDistill's decoder inputs) set it False.
    """

    taps_only: bool = True

    def __init__(self, init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_taps: list[str] = []
        self.teacher_taps: list[str] = []
        # taps whose outputs must be copied when recorded (changed in place afterwards)
        self.clone_taps: dict[str, set[str]] = {'student': set(), 'teacher': set()}

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Give the component read access to both models, before :meth:`setup`.

        For components that need a model's own machinery (a dense head's prior generator,
        box coder or assigner). The references are plain attributes, not submodules, so the
        models' parameters are neither duplicated in this component's state dict nor
        trained through it.
        """
        object.__setattr__(self, '_bound_models', (student, teacher))

    @property
    def student_model(self) -> nn.Module:
        """The student model given by :meth:`bind`."""
        return self._bound('student', 0)

    @property
    def teacher_model(self) -> nn.Module:
        """The teacher model given by :meth:`bind`."""
        return self._bound('teacher', 1)

    def _bound(self, role: str, index: int) -> nn.Module:
        models = self.__dict__.get('_bound_models')
        if models is None:
            raise RuntimeError(f'{type(self).__name__}: no {role} model yet; the '
                               'DistillationModel calls bind() before setup()')
        return models[index]

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Build projectors etc. from the dry-run shapes (one torch.Size per level)."""

    def student_pass(self) -> contextlib.AbstractContextManager:
        """Entered around the student's forward in a distillation step (after the
        teacher's forward, before :meth:`forward`). A component that changes that forward
        arms itself here, so a student forward outside a distillation step (the student's
        own ``loss``, a benchmark's student step) stays the plain one. Default: nothing."""
        return contextlib.nullcontext()

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """Compute this component's losses.

        Args:
            student: levels recorded by each student tap, keyed by module path.
            teacher: the same for the teacher (recorded under ``no_grad``).
            data_samples: the batch's data samples (ground truth, image metas).

        Returns:
            ``{'loss_<name>': scalar}``.
        """
        raise NotImplementedError(f'{type(self).__name__} must implement forward()')
