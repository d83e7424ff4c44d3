"""Hungarian matching of student predictions to teacher predictions (DETRDistill)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from densekd.registry import TASK_UTILS

from .costs import BoxL1Cost, GIoUCost, SoftClassificationCost

__all__ = ['HungarianMatcher', 'linear_assignment']


def linear_assignment(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignment of a (P, T) cost matrix.

    Rectangular matrices are allowed: ``min(P, T)`` pairs are returned, each row and each
    column used at most once (scipy's ``linear_sum_assignment``, exact). Rows come back in
    increasing order.

    Returns:
        ``(rows, cols)``: two int64 tensors of length ``min(P, T)`` on ``cost``'s device.
    """
    if cost.dim() != 2:
        raise ValueError(f'cost must be a (P, T) matrix, got shape {tuple(cost.shape)}')
    device = cost.device
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty.clone()
    c = cost.detach().float().cpu()
    if not torch.isfinite(c).all():
        raise ValueError('linear_assignment: the cost matrix has NaN or inf entries')
    rows, cols = linear_sum_assignment(c.numpy())
    return (torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(device),
            torch.from_numpy(np.asarray(cols, dtype=np.int64)).to(device))


@TASK_UTILS.register_module()
class HungarianMatcher:
    """Match P student predictions to T teacher predictions of one image.

    The cost is the sum of the cost terms (DETRDistill: soft-BCE classification x1, L1 on
    normalised cxcywh x5, GIoU x2); the assignment is exact (:func:`linear_assignment`).
    With P != T (different query counts) ``min(P, T)`` pairs are matched.

    Example::

        matcher = TASK_UTILS.build(dict(type='densekd.HungarianMatcher'))
        s_idx, t_idx = matcher(s_logits, s_boxes, t_probs, t_boxes, img_shape=(h, w))

    Args:
        costs: cost terms (configs or callables with the signature of
            :mod:`densekd.models.matchers.costs`); default the paper's three.
    """

    def __init__(self, costs: Sequence[dict | object] | None = None) -> None:
        if costs is None:
            costs = [SoftClassificationCost(1.0), BoxL1Cost(5.0), GIoUCost(2.0)]
        self.costs = [TASK_UTILS.build(c) if isinstance(c, dict) else c for c in costs]
        if not self.costs:
            raise ValueError('HungarianMatcher needs at least one cost term')

    @torch.no_grad()
    def cost_matrix(self, pred_logits: Tensor, pred_boxes: Tensor, target_scores: Tensor,
                    target_boxes: Tensor, img_shape: tuple[int, int] | None = None) -> Tensor:
        """The (P, T) sum of all cost terms."""
        return sum(c(pred_logits, pred_boxes, target_scores, target_boxes, img_shape)
                   for c in self.costs)

    @torch.no_grad()
    def __call__(self, pred_logits: Tensor, pred_boxes: Tensor, target_scores: Tensor,
                 target_boxes: Tensor,
                 img_shape: tuple[int, int] | None = None) -> tuple[Tensor, Tensor]:
        """Indices ``(pred_idx, target_idx)`` of the matched pairs.

        Args:
            pred_logits: (P, C) student class logits.
            pred_boxes: (P, 4) student boxes, normalised (cx, cy, w, h).
            target_scores: (T, C) teacher class probabilities.
            target_boxes: (T, 4) teacher boxes, normalised (cx, cy, w, h).
            img_shape: (h, w) of the image in pixels.
        """
        return linear_assignment(self.cost_matrix(pred_logits, pred_boxes, target_scores,
                                                  target_boxes, img_shape))

    def __repr__(self) -> str:
        return f'HungarianMatcher(costs={self.costs})'
