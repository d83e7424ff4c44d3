"""Match costs between a student's and a teacher's DETR predictions (DETRDistill).

Every cost term has the same call signature, so a matcher sums any list of them::

    cost(pred_logits, pred_boxes, target_scores, target_boxes, img_shape) -> (P, T)

``pred_logits`` (P, C) are the student's class logits, ``target_scores`` (T, C) the
teacher's sigmoid probabilities; boxes are normalised ``(cx, cy, w, h)`` in [0, 1];
``img_shape`` is ``(h, w)`` in pixels (used by the GIoU term, which is not invariant to a
change of aspect ratio, so it is computed in pixels like mmdet's and the reference's).
Every input may carry the same leading batch dims, (..., P, C) and so on, for many
matchings at once; ``img_shape`` is then one ``(h, w)`` or a (..., 2) tensor of them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from torch import Tensor

from densekd.registry import TASK_UTILS

__all__ = ['SoftClassificationCost', 'BoxL1Cost', 'GIoUCost', 'soft_bce_cost']


def soft_bce_cost(pred_logits: Tensor, target_scores: Tensor) -> Tensor:
    """Pairwise ``sum_c BCE(x_pc, t_tc)``: (P, C), (T, C) -> (P, T).

    ``BCE(x, t) = softplus(x) - x t`` (binary cross-entropy with logits and a soft target),
    so the sum over classes is ``sum_c softplus(x_pc) - x_p . t_t``: one matrix product,
    no (P, T, C) tensor. Summed over classes, not averaged (DETRDistill's
    ``DistillCrossEntropyLossCost``).
    """
    x = pred_logits.float()
    t = target_scores.float()
    return F.softplus(x).sum(-1, keepdim=True) - x @ t.transpose(-1, -2)


class _Cost:
    """A weighted cost term; subclasses implement :meth:`cost`."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def cost(self, pred_logits: Tensor, pred_boxes: Tensor, target_scores: Tensor,
             target_boxes: Tensor, img_shape: tuple[int, int] | None) -> Tensor:
        raise NotImplementedError

    def __call__(self, pred_logits: Tensor, pred_boxes: Tensor, target_scores: Tensor,
                 target_boxes: Tensor, img_shape: tuple[int, int] | None = None) -> Tensor:
        """(P, T) cost, ``weight`` times the unweighted term."""
        return self.cost(pred_logits, pred_boxes, target_scores, target_boxes,
                         img_shape) * self.weight

    def __repr__(self) -> str:
        return f'{type(self).__name__}(weight={self.weight})'


@TASK_UTILS.register_module()
class SoftClassificationCost(_Cost):
    """``weight * sum_c BCE(student_logit_c, teacher_prob_c)`` (see :func:`soft_bce_cost`).

    DETRDistill's classification cost, weight 1.
    """

    def cost(self, pred_logits, pred_boxes, target_scores, target_boxes, img_shape):
        return soft_bce_cost(pred_logits, target_scores)


@TASK_UTILS.register_module()
class BoxL1Cost(_Cost):
    """``weight * ||b_p - b_t||_1`` on normalised (cx, cy, w, h) boxes; weight 5."""

    def cost(self, pred_logits, pred_boxes, target_scores, target_boxes, img_shape):
        return torch.cdist(pred_boxes.float(), target_boxes.float(), p=1)


@TASK_UTILS.register_module()
class GIoUCost(_Cost):
    """``-weight * GIoU(b_p, b_t)`` on (x1, y1, x2, y2) pixel boxes; weight 2.

    Boxes are converted from normalised (cx, cy, w, h) and scaled by ``img_shape``; with
    ``img_shape=None`` the GIoU is taken on normalised coordinates.
    """

    def cost(self, pred_logits, pred_boxes, target_scores, target_boxes, img_shape):
        p, t = bbox_cxcywh_to_xyxy(pred_boxes.float()), bbox_cxcywh_to_xyxy(target_boxes.float())
        if isinstance(img_shape, Tensor):   # (..., 2) (h, w), one per matching
            wh = img_shape.to(p).flip(-1)
            factor = torch.cat([wh, wh], -1)
            p, t = p * factor[..., None, :], t * factor[..., None, :]
        elif img_shape is not None:
            h, w = img_shape[:2]
            factor = p.new_tensor([w, h, w, h])
            p, t = p * factor, t * factor
        return -bbox_overlaps(p, t, mode='giou')
