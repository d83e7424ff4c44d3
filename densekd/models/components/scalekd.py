"""ScaleKDDistill: ScaleKD (Fan et al., NeurIPS 2024) for dense students of a transformer."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from densekd.registry import MODELS

from ..losses._checks import check_positive, check_weight
from ..losses.scalekd import scalekd_frequency_loss, scalekd_spatial_loss
from ..projectors.scalekd import CrossAttentionProjector
from ..projectors.tokens import align_map, to_map, tokens_to_map
from .base import DistillComponent, TapLevels, TapShapes

__all__ = ['ScaleKDDistill']


@MODELS.register_module()
class ScaleKDDistill(DistillComponent):
    """Cross-attention projector + dual-view (spatial / frequency) mimicking, per level pair.

    For each pair ``(student_levels[i], teacher_levels[i])`` the student map is resized to the
    teacher's grid and projected to teacher tokens by two :class:`CrossAttentionProjector` s
    (one per view, as the official ``FreqMaskingDistillLossv2``; the frequency one is not built
    when its alpha is 0); ``loss_spatial_<i>`` = ``alpha[i][0]`` *
    :func:`scalekd_spatial_loss`, ``loss_frequency_<i>`` = ``alpha[i][1]`` *
    :func:`scalekd_frequency_loss`.

    ``perception=True`` adds ScaleKD's teacher parameter perception for mmdet/mmseg Swin
    teachers (official ``ClassificationDistiller.loss`` with ``forward_specific_stage``): the
    projected tokens of every pair but the last are taken as the teacher's stage-``k`` output,
    run through the frozen teacher's ``stages[k].downsample``, ``stages[k + 1]`` and
    ``norm{k + 1}`` (gradients flow through, the teacher's weights stay fixed), compared with
    teacher level ``k + 1`` instead of level ``k``, and used as the queries of the next pair's
    projectors. Teacher levels must then be consecutive stages.

    Args:
        student: student tap (e.g. ``'backbone'``).
        teacher: teacher tap (e.g. ``'backbone'``); maps, or tokens on a square grid.
        student_levels: student level indices.
        teacher_levels: teacher level indices, same length.
        alpha: per pair ``(alpha_spatial, alpha_frequency)``; one pair for all levels allowed.
            Official Swin-S -> R50: ``[(0.08, 0.06), (0.08, 0.0)]`` for stages 3, 4.
        num_heads: per pair (or one int).
        num_windows: attention windows (rows, cols); (1, 1) = global.
        softmax_scale: logit scale of the projector attention (5).
        perception: teacher parameter perception (see above).
        num_extra_tokens: leading class tokens of token taps.
        align: ``'bilinear'`` or ``'pool'``: student map to the teacher grid.
    """

    def __init__(self, student: str, teacher: str, student_levels: Sequence[int],
                 teacher_levels: Sequence[int],
                 alpha: Sequence[Sequence[float]] = ((0.08, 0.06),),
                 num_heads: int | Sequence[int] = 8, num_windows: Sequence[int] = (1, 1),
                 softmax_scale: float = 5.0, perception: bool = False,
                 num_extra_tokens: int = 0, align: str = 'bilinear',
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(student_levels) != len(teacher_levels):
            raise ValueError('student_levels and teacher_levels must have the same length')
        n = len(student_levels)
        alpha = [tuple(a) for a in alpha]
        for i, pair in enumerate(alpha):
            if len(pair) != 2:
                raise ValueError(f'ScaleKDDistill: alpha[{i}] must be a pair (alpha_spatial, '
                                 f'alpha_frequency), got {pair!r}')
            for j, a in enumerate(pair):
                check_weight('ScaleKDDistill', f'alpha[{i}][{j}]', a)
        check_positive('ScaleKDDistill', 'softmax_scale', softmax_scale,
                       'the logit scale of the projector attention')
        self.alpha = alpha * n if len(alpha) == 1 else alpha
        heads = [num_heads] * n if isinstance(num_heads, int) else list(num_heads)
        if len(self.alpha) != n or len(heads) != n:
            raise ValueError(f'alpha and num_heads need one entry per level pair ({n})')
        self.num_heads = heads
        self.student, self.teacher = student, teacher
        self.student_levels, self.teacher_levels = list(student_levels), list(teacher_levels)
        self.num_windows = tuple(num_windows)
        self.softmax_scale = softmax_scale
        self.perception = perception
        self.num_extra_tokens = num_extra_tokens
        self.align = align
        self.student_taps = [student]
        self.teacher_taps = [teacher]
        self.spatial = nn.ModuleList()
        self.frequency = nn.ModuleList()
        self.grids: list[tuple[int, int]] = []

    def _teacher_map(self, x: Tensor) -> Tensor:
        return to_map(x, None, self.num_extra_tokens)

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Build the projectors at each teacher level's grid and channels."""
        s_all, t_all = student_shapes[self.student], teacher_shapes[self.teacher]
        if self.perception:
            levels = [i % len(t_all) for i in self.teacher_levels]
            if any(b != a + 1 for a, b in zip(levels, levels[1:])):
                raise ValueError('perception=True needs consecutive teacher levels, got '
                                 f'{self.teacher_levels}')
            self._swin_stages()
        for i, (si, ti) in enumerate(zip(self.student_levels, self.teacher_levels)):
            s, t = s_all[si], t_all[ti]
            if len(t) == 4:
                channels, grid = int(t[1]), (int(t[2]), int(t[3]))
            else:
                channels = int(t[-1])
                side = math.isqrt(int(t[1]) - self.num_extra_tokens)
                grid = (side, side)  # tokens_to_map checks squareness in forward
            self.grids.append(grid)
            feeds_next = self.perception and i + 1 < len(self.alpha)
            for views, a in ((self.spatial, self.alpha[i][0]),
                             (self.frequency, self.alpha[i][1])):
                if a <= 0 and not feeds_next:
                    views.append(nn.Identity())  # unused view (official: built, weight 0)
                    continue
                # with perception, later levels take the perceived tokens as queries
                views.append(CrossAttentionProjector(
                    int(s[1]), channels, grid, self.num_heads[i],
                    num_windows=self.num_windows, softmax_scale=self.softmax_scale,
                    self_query=not (self.perception and i > 0)))

    def _swin_stages(self) -> nn.Module:
        backbone = self.teacher_model.get_submodule('backbone')
        if not hasattr(backbone, 'stages'):
            raise ValueError('perception=True supports mmdet/mmseg SwinTransformer teachers')
        return backbone

    def _perceive(self, tokens: Tensor, level: int, hw: tuple[int, int]) -> Tensor:
        """Projected stage-``level`` tokens through the teacher's next stage: (B, N', C')."""
        backbone = self._swin_stages()
        x, hw = backbone.stages[level].downsample(tokens, hw)
        out = backbone.stages[level + 1](x, hw)[2]
        return getattr(backbone, f'norm{level + 1}')(out)

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_spatial_<i>`` and ``loss_frequency_<i>`` for each level pair."""
        s_all, t_all = student[self.student], teacher[self.teacher]
        losses: dict[str, Tensor] = {}
        queries: dict[str, Tensor | None] = {'spatial': None, 'frequency': None}
        n = len(self.student_levels)
        for i, (si, ti) in enumerate(zip(self.student_levels, self.teacher_levels)):
            t = self._teacher_map(t_all[ti])
            s = align_map(s_all[si], t.shape[-2:], self.align)
            target = t
            if self.perception and i + 1 < n:
                target = self._teacher_map(t_all[self.teacher_levels[i + 1]])
            for view, fn, a in (('spatial', scalekd_spatial_loss, self.alpha[i][0]),
                                ('frequency', scalekd_frequency_loss, self.alpha[i][1])):
                proj = getattr(self, view)[i]
                if isinstance(proj, nn.Identity):
                    continue
                tokens = proj(s, query=queries[view])
                if self.perception and i + 1 < n:
                    level = ti % len(t_all)
                    tokens = self._perceive(tokens, level, tuple(t.shape[-2:]))
                    queries[view] = tokens
                if a > 0:
                    pred = tokens_to_map(tokens, tuple(target.shape[-2:]))
                    losses[f'loss_{view}_{i}'] = a * fn(pred, target)
        return losses

