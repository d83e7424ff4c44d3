"""Hungarian matching of student predictions to teacher predictions (DETRDistill)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from densekd.registry import TASK_UTILS

from .costs import BoxL1Cost, GIoUCost, SoftClassificationCost

__all__ = ['HungarianMatcher', 'linear_assignment', 'batched_linear_assignment']


def batched_linear_assignment(cost: Tensor) -> tuple[Tensor, Tensor]:
    """Minimum-cost one-to-one assignments of N (P, T) cost matrices at once.

    Each matrix gets ``m = min(P, T)`` pairs, every row and column used at most once
    (scipy's ``linear_sum_assignment``, exact), rows in increasing order. The matrices
    cross to the host in one copy and the indices come back in one copy (on a GPU: one
    host sync per call, whatever N).

    Args:
        cost: (N, P, T).

    Returns:
        ``(rows, cols)``: two (N, m) int64 tensors on ``cost``'s device.
    """
    if cost.dim() != 3:
        raise ValueError(f'cost must be (N, P, T) matrices, got shape {tuple(cost.shape)}')
    n, p, t = cost.shape
    m = min(p, t)
    rows = np.zeros((n, m), dtype=np.int64)
    cols = np.zeros((n, m), dtype=np.int64)
    if m:
        c = cost.detach().float().cpu().numpy()
        if not np.isfinite(c).all():
            raise ValueError('linear_assignment: the cost matrix has NaN or inf entries')
        for i in range(n):
            rows[i], cols[i] = linear_sum_assignment(c[i])
    both = torch.from_numpy(np.stack([rows, cols])).to(cost.device)
    return both[0], both[1]


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
    rows, cols = batched_linear_assignment(cost[None])
    return rows[0], cols[0]


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
                    target_boxes: Tensor,
                    img_shape: tuple[int, int] | Tensor | None = None) -> Tensor:
        """The (..., P, T) sum of all cost terms (inputs may carry leading batch dims;
        ``img_shape`` is then one ``(h, w)`` for all or a (..., 2) tensor of them)."""
        return sum(c(pred_logits, pred_boxes, target_scores, target_boxes, img_shape)
                   for c in self.costs)

    @torch.no_grad()
    def match_batch(self, pred_logits: Tensor, pred_boxes: Tensor, target_scores: Tensor,
                    target_boxes: Tensor, img_shapes: Tensor) -> tuple[Tensor, Tensor]:
        """N independent matchings at once (e.g. every decoder layer and image of a step):
        the N cost matrices in one batched computation, one host round trip for all
        assignments (:func:`batched_linear_assignment`).

        Args:
            pred_logits: (N, P, C). pred_boxes: (N, P, 4) normalised cxcywh.
            target_scores: (N, T, C). target_boxes: (N, T, 4) normalised cxcywh.
            img_shapes: (N, 2) ``(h, w)`` in pixels of each matching's image.

        Returns:
            ``(pred_idx, target_idx)``: (N, min(P, T)) each, prediction indices increasing.
        """
        return batched_linear_assignment(self.cost_matrix(
            pred_logits, pred_boxes, target_scores, target_boxes, img_shapes))

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
