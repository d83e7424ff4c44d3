"""FeatureMimic: a loss between tapped student and teacher features, level by level."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from .base import DistillComponent, TapLevels, TapShapes

__all__ = ['FeatureMimic']


@MODELS.register_module()
class FeatureMimic(DistillComponent):
    """Mimic teacher features with a per-level loss, through an optional projector.

    One entry covers all levels of a multi-level tap (an FPN neck): the loss is applied to
    each selected level and the results are summed.

    Example::

        dict(type='densekd.FeatureMimic', student='neck', teacher='neck',
             loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0))

    Args:
        student: student module path.
        teacher: teacher module path.
        loss: a registered loss taking ``(preds_S, preds_T)`` per level. Two optional class
            attributes change how it is used: ``per_level = True`` builds one instance per
            level with ``channels=<teacher channels>`` added to the config (losses with
            parameters, e.g. MGD's generator, FGD's GcBlocks; ``loss`` must then be a dict);
            ``uses_data_samples = True`` calls it as ``loss(s, t, data_samples)`` (FGD
            reads the ground-truth boxes); such a per-level loss with a
            ``prepare_levels(data_samples, sizes, device)`` method gets that method's
            per-level items as a fourth argument, made once for all levels (FGD's masks);
            one with a classmethod ``forward_levels(losses, s_levels, t_levels,
            data_samples)`` is computed for all levels in that one call when it returns a
            tensor (FGD: the sum of its per-level losses, see ``fgd_loss_levels``), level
            by level when it returns None.
        levels: which levels to use; default all.
        projector: config of a projector applied to each student level, one instance per
            level, ``in_channels``/``out_channels`` filled from the dry run. Required when
            channel counts differ, unless the loss sets ``requires_equal_channels = False``.
        resize: bilinearly resize the student map to the teacher's size when they differ
            (otherwise a size mismatch is an error).
        clone: copy the tapped outputs when recorded; needed only for modules whose output
            the model then changes in place (e.g. a BN followed by an inplace ReLU).
        init_cfg: mmengine init config.
    """

    def __init__(self, student: str, teacher: str, loss: dict | nn.Module,
                 levels: Sequence[int] | None = None, projector: dict | None = None,
                 resize: bool = False, clone: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student = student
        self.teacher = teacher
        self.student_taps = [student]
        self.teacher_taps = [teacher]
        if clone:
            self.clone_taps = {'student': {student}, 'teacher': {teacher}}
        loss_cls = type(loss) if isinstance(loss, nn.Module) else MODELS.get(loss['type'])
        if loss_cls is None:
            raise KeyError(f'FeatureMimic: loss type {loss["type"]!r} is not registered; '
                           'check the name or add its module to custom_imports')
        self.per_level = bool(getattr(loss_cls, 'per_level', False))
        if self.per_level and isinstance(loss, nn.Module):
            raise TypeError(f'FeatureMimic: {loss_cls.__name__} is built per level from the '
                            'dry-run channels; pass it as a config dict')
        self.loss_cfg = loss
        # per-level losses are built in setup(); until then self.loss is None
        self.loss = None if self.per_level else (
            loss if isinstance(loss, nn.Module) else MODELS.build(loss))
        self.losses = nn.ModuleList()
        self.uses_data_samples = bool(getattr(loss_cls, 'uses_data_samples', False))
        self._loss_name = getattr(loss_cls, 'loss_name', loss_cls.__name__.lower())
        self.requires_equal_channels = bool(getattr(loss_cls, 'requires_equal_channels', True))
        self.levels = None if levels is None else list(levels)
        self.projector_cfg = projector
        self.resize = resize
        self.projectors = nn.ModuleList()

    @property
    def loss_key(self) -> str:
        """The log key of this component's loss, ``loss_<loss name>``."""
        return 'loss_' + self._loss_name

    def _select(self, levels: list) -> list:
        if self.levels is None:
            return levels
        bad = [i for i in self.levels if not -len(levels) <= i < len(levels)]
        if bad:
            raise IndexError(f'levels {bad} out of range for a tap with {len(levels)} levels')
        return [levels[i] for i in self.levels]

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Check level counts, channels and sizes; build one projector per level."""
        s_shapes = self._select(student_shapes[self.student])
        t_shapes = self._select(teacher_shapes[self.teacher])
        if len(s_shapes) != len(t_shapes):
            raise ValueError(f'FeatureMimic: student tap {self.student!r} gives {len(s_shapes)} '
                             f'levels, teacher tap {self.teacher!r} gives {len(t_shapes)}; '
                             'select matching ones with `levels=`')
        for i, (s, t) in enumerate(zip(s_shapes, t_shapes)):
            if len(s) < 2 or len(t) < 2:
                raise ValueError(f'FeatureMimic: level {i} has shapes {tuple(s)} / {tuple(t)}; '
                                 'expected (N, C, ...) maps')
            if s[1] != t[1] and self.projector_cfg is None and self.requires_equal_channels:
                raise ValueError(
                    f'FeatureMimic {self.student!r} -> {self.teacher!r}: level {i} has '
                    f'{s[1]} student channels and {t[1]} teacher channels, and no projector. '
                    "Add projector=dict(type='densekd.ConvProjector').")
            if s[2:] != t[2:] and not self.resize:
                raise ValueError(
                    f'FeatureMimic {self.student!r} -> {self.teacher!r}: level {i} spatial '
                    f'size {tuple(s[2:])} (student) vs {tuple(t[2:])} (teacher) at the dry run; '
                    'set resize=True to resize the student map to the teacher\'s size.')
        if self.projector_cfg is not None:
            self.projectors = nn.ModuleList(
                MODELS.build(dict(self.projector_cfg, in_channels=s[1], out_channels=t[1]))
                for s, t in zip(s_shapes, t_shapes))
        if self.per_level:
            self.losses = nn.ModuleList(
                MODELS.build(dict(self.loss_cfg, channels=t[1])) for t in t_shapes)

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """Sum of the loss over the selected levels."""
        s_levels = self._select(student[self.student])
        t_levels = self._select(teacher[self.teacher])
        inputs = []
        for i, (s, t) in enumerate(zip(s_levels, t_levels)):
            if len(self.projectors):
                s = self.projectors[i](s)
            if s.shape[2:] != t.shape[2:]:
                if not self.resize:
                    raise ValueError(f'FeatureMimic level {i}: student {tuple(s.shape)} vs '
                                     f'teacher {tuple(t.shape)}; set resize=True')
                s = F.interpolate(s, size=t.shape[2:], mode='bilinear', align_corners=False)
            inputs.append(s)
        if self.per_level and hasattr(type(self.losses[0]), 'forward_levels'):
            # all levels in one pass where the loss can (FGD); None: level by level
            total = type(self.losses[0]).forward_levels(self.losses, inputs, t_levels,
                                                         data_samples)
            if total is not None:
                return {self.loss_key: total}
        prepared = None
        if self.uses_data_samples and self.per_level and \
                hasattr(self.losses[0], 'prepare_levels'):
            # what the per-level losses derive from the data samples, made once (FGD's masks)
            prepared = self.losses[0].prepare_levels(
                data_samples, [t.shape[2:] for t in t_levels], t_levels[0].device)
        total = None
        for i, (s, t) in enumerate(zip(inputs, t_levels)):
            loss = self.losses[i] if self.per_level else self.loss
            if prepared is not None:
                value = loss(s, t, data_samples, prepared[i])
            else:
                value = loss(s, t, data_samples) if self.uses_data_samples else loss(s, t)
            total = value if total is None else total + value
        return {self.loss_key: total}
