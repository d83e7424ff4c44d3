"""DETRDistill losses (Chang et al., "DETRDistill: A Universal Knowledge Distillation
Framework for DETR-families", ICCV 2023).

* :func:`soft_bce_distill_loss`, :func:`box_distill_losses` and :class:`HungarianDistillLoss`:
  Hungarian-matching logits distillation on matched (student, teacher) query pairs.
* :func:`target_aware_mask` and :func:`target_aware_feature_loss` with
  :class:`TargetAwareFeatureLoss`: target-aware feature distillation.

Teacher-confidence weighting. The reference code (BIVLab-USTC/DETRDistill) weights every
matched pair equally and divides by the number of pairs; with as many student as teacher
queries, the teacher's background queries (low probabilities) are then most of the targets.
The paper's text could not be checked here; what we implement as the default
(``weighting='teacher_score'``) is: pair weight ``w = max_c p_t,c`` (the teacher's
confidence) and a weighted mean, ``sum w * l / sum w``, for the logits and both box terms.
``weighting=None`` gives the reference code's behaviour (``w = 1``, divided by #pairs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmdet.utils import reduce_mean
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_choice, check_positive, check_weight

__all__ = ['soft_bce_distill_loss', 'binary_entropy', 'box_distill_losses', 'pair_weights',
           'HungarianDistillLoss', 'target_aware_mask', 'target_aware_feature_loss',
           'TargetAwareFeatureLoss']

WEIGHTINGS = ('teacher_score', None)


def binary_entropy(p: Tensor) -> Tensor:
    """Elementwise ``-(p log p + (1 - p) log(1 - p))``, 0 at p in {0, 1}."""
    return -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p))


def pair_weights(teacher_probs: Tensor, weighting: str | None) -> Tensor:
    """Per-pair weight: ``max_c p_t,c`` (``'teacher_score'``) or 1 (``None``).
    (..., N, C) -> (..., N)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f'weighting must be one of {WEIGHTINGS}, got {weighting!r}')
    if weighting is None:
        return teacher_probs.new_ones(teacher_probs.shape[:-1])
    return teacher_probs.amax(-1) if teacher_probs.numel() else \
        teacher_probs.new_zeros(teacher_probs.shape[:-1])


def _normaliser(weights: Tensor, weighting: str | None) -> Tensor:
    """The pairs' weight sum over the last dim, (..., N) -> (...) (``weighting=None``:
    their number, at least 1), averaged over the processes of a distributed run as the
    reference does with its number of matches: DDP then averages each process's
    ``sum / mean_total``, i.e. the global weighted mean. One collective for all groups."""
    total = reduce_mean(weights.sum(-1).float())
    return total.clamp(min=1.0) if weighting is None else total.clamp(min=1e-6)


def soft_bce_distill_loss(student_logits: Tensor, teacher_probs: Tensor,
                          weights: Tensor | None = None, avg_factor: float | Tensor = 1.0,
                          subtract_entropy: bool = True) -> Tensor:
    """Logits distillation on matched pairs, (N, C) logits and (N, C) teacher probs -> scalar.

    With leading group dims, (..., N, C) inputs, (..., N) weights and a (...) ``avg_factor``,
    each group is divided by its own factor and the groups are summed.

    ``sum_n w_n sum_c [BCE(x_nc, p_nc) - H(p_nc)] / avg_factor`` with
    ``BCE(x, p) = softplus(x) - x p``. Subtracting the target entropy ``H(p)`` (a constant:
    same gradient) makes it the Bernoulli KL divergence, zero when the student's
    probabilities equal the teacher's; without it (``subtract_entropy=False``) it is the
    reference's ``DistillCrossEntropyLoss`` (summed over classes) whose value at equality is
    ``sum H(p)``. An empty input gives a zero that keeps the graph.
    """
    if student_logits.numel() == 0:
        return student_logits.sum() * 0
    x, p = student_logits.float(), teacher_probs.float()
    loss = F.binary_cross_entropy_with_logits(x, p, reduction='none')
    if subtract_entropy:
        loss = loss - binary_entropy(p)
    loss = loss.sum(-1)
    if weights is not None:
        loss = loss * weights
    return (loss.sum(-1) / avg_factor).sum()


def box_distill_losses(student_boxes: Tensor, teacher_boxes: Tensor, img_wh: Tensor,
                       weights: Tensor | None = None,
                       avg_factor: float | Tensor = 1.0) -> tuple[Tensor, Tensor]:
    """L1 and GIoU losses on matched boxes: (N, 4) normalised cxcywh each -> two scalars.

    With leading group dims ((..., N, 4) boxes, (..., N, 2) sizes, (..., N) weights, (...)
    ``avg_factor``) each group is divided by its own factor and the groups are summed.

    L1 on normalised (cx, cy, w, h), summed over the 4 coordinates; GIoU loss ``1 - GIoU``
    on pixel (x1, y1, x2, y2) boxes (``img_wh``: (N, 2) image width and height of each
    pair); both weighted by ``weights`` and divided by ``avg_factor`` (mmdet's ``L1Loss`` and
    ``GIoULoss`` with ``avg_factor``, as in the reference).
    """
    if student_boxes.numel() == 0:
        zero = student_boxes.sum() * 0
        return zero, zero.clone()
    s, t = student_boxes.float(), teacher_boxes.float()
    l1 = (s - t).abs().sum(-1)
    factor = torch.cat([img_wh.float(), img_wh.float()], -1)
    giou = bbox_overlaps(bbox_cxcywh_to_xyxy(s) * factor, bbox_cxcywh_to_xyxy(t) * factor,
                         mode='giou', is_aligned=True)
    iou_loss = 1 - giou
    if weights is not None:
        l1, iou_loss = l1 * weights, iou_loss * weights
    return (l1.sum(-1) / avg_factor).sum(), (iou_loss.sum(-1) / avg_factor).sum()


@MODELS.register_module()
class HungarianDistillLoss(nn.Module):
    """DETRDistill's logits distillation on Hungarian-matched pairs.

    Returns ``loss_logits`` (:func:`soft_bce_distill_loss`, weight 1), ``loss_bbox`` (L1,
    weight 5) and ``loss_iou`` (GIoU, weight 2), all divided by the same normaliser: the
    number of pairs (``weighting=None``, reference code) or the sum of the teacher-confidence
    weights (``weighting='teacher_score'``, default; see the module docstring).

    Args:
        cls_weight: weight of ``loss_logits``.
        l1_weight: weight of ``loss_bbox``.
        giou_weight: weight of ``loss_iou``.
        weighting: ``'teacher_score'`` or ``None``.
        subtract_entropy: subtract the teacher's entropy (zero loss at equality).
    """

    def __init__(self, cls_weight: float = 1.0, l1_weight: float = 5.0,
                 giou_weight: float = 2.0, weighting: str | None = 'teacher_score',
                 subtract_entropy: bool = True) -> None:
        super().__init__()
        self.weighting = check_choice('HungarianDistillLoss', 'weighting', weighting, WEIGHTINGS)
        self.cls_weight = check_weight('HungarianDistillLoss', 'cls_weight', cls_weight)
        self.l1_weight = check_weight('HungarianDistillLoss', 'l1_weight', l1_weight)
        self.giou_weight = check_weight('HungarianDistillLoss', 'giou_weight', giou_weight)
        self.subtract_entropy = subtract_entropy

    def forward(self, student_logits: Tensor, student_boxes: Tensor, teacher_probs: Tensor,
                teacher_boxes: Tensor, img_wh: Tensor) -> dict[str, Tensor]:
        """Matched pairs of one decoder layer, all images together; or of L layers at
        once, with a leading (L,) dim on every input: each layer has its own normaliser
        and the layers' losses are summed.

        Args:
            student_logits: (N, C).
            student_boxes: (N, 4) normalised cxcywh.
            teacher_probs: (N, C) sigmoid probabilities.
            teacher_boxes: (N, 4) normalised cxcywh.
            img_wh: (N, 2) width and height in pixels of each pair's image.
        """
        with torch.no_grad():
            w = pair_weights(teacher_probs.float(), self.weighting)
            norm = _normaliser(w, self.weighting)
        weights = None if self.weighting is None else w
        cls = soft_bce_distill_loss(student_logits, teacher_probs, weights, norm,
                                    self.subtract_entropy)
        l1, giou = box_distill_losses(student_boxes, teacher_boxes, img_wh, weights, norm)
        return dict(loss_logits=cls * self.cls_weight, loss_bbox=l1 * self.l1_weight,
                    loss_iou=giou * self.giou_weight)


def target_aware_mask(queries: Tensor, quality: Tensor, teacher_feat: Tensor,
                      min_value: float = 0.01) -> Tensor:
    """DETRDistill's target-aware mask of one feature level.

    ``m(x, y) = clamp(sum_n q_n <h_n / |h_n|, F(x, y) / |F(x, y)|>, min=min_value)`` then
    divided by its maximum over (x, y), per image. The sum over queries is linear, so it is
    computed as one vector per image, ``g = sum_n q_n h_n / |h_n|``, then ``<g, F / |F|>``
    (N times less work than a similarity map per query).

    Args:
        queries: (B, N, D) teacher decoder embeddings of the selected queries.
        quality: (B, N) their quality ``score x max IoU with GT`` (score if no GT).
        teacher_feat: (B, D, H, W) teacher feature map (D must equal the query width).

    Returns:
        (B, 1, H, W) mask in [min_value / max, 1].
    """
    return _mask_from_normalised(queries, quality, F.normalize(teacher_feat.float(), dim=1),
                                 min_value)


def _mask_from_normalised(queries: Tensor, quality: Tensor, feat_n: Tensor,
                          min_value: float) -> Tensor:
    g = torch.einsum('bnc,bn->bc', F.normalize(queries.float(), dim=-1), quality.float())
    mask = torch.einsum('bc,bchw->bhw', g, feat_n).clamp(min=min_value)
    return (mask / mask.flatten(1).max(-1).values[:, None, None])[:, None]


def target_aware_feature_loss(student_feat: Tensor, teacher_feat: Tensor,
                              mask: Tensor) -> Tensor:
    """``MSE_mean(mask * F_T, mask * F_S)``: (B, C, H, W) x2 and (B, 1, H, W) -> scalar.

    Mean over all B*C*H*W elements (``nn.MSELoss(reduction='mean')`` in the reference).
    """
    if student_feat.numel() == 0:
        return student_feat.sum() * 0
    return F.mse_loss(mask * student_feat.float(), mask * teacher_feat.float())


@MODELS.register_module()
class TargetAwareFeatureLoss(nn.Module):
    """Target-aware feature loss of one level, ``loss_weight`` x
    :func:`target_aware_feature_loss` with the mask of :func:`target_aware_mask`.

    Args:
        loss_weight: weight (reference: 1).
        min_value: the mask's lower clamp before normalisation (reference: 0.01).
    """

    def __init__(self, loss_weight: float = 1.0, min_value: float = 0.01) -> None:
        super().__init__()
        self.loss_weight = check_weight('TargetAwareFeatureLoss', 'loss_weight', loss_weight)
        # the mask is clamped at min_value and divided by its maximum: > 0 keeps it finite
        self.min_value = check_positive('TargetAwareFeatureLoss', 'min_value', min_value,
                                        'the floor of the target-aware mask')

    def forward(self, student_feat: Tensor, teacher_feat: Tensor, queries: Tensor,
                quality: Tensor) -> Tensor:
        """(B, C, H, W) adapted student and teacher maps; (B, N, C) queries and (B, N)
        quality for one decoder stage, or (S, B, N, C) / (S, B, N) for S stages, whose
        losses are summed.

        Several stages share one pass over the features: ``sum_s MSE_mean(m_s F_S, m_s F_T)
        = mean((sum_s m_s^2) (F_S - F_T)^2)`` (exact; the masks carry no gradient).
        """
        if queries.dim() == 3:
            queries, quality = queries[None], quality[None]
        if student_feat.numel() == 0:
            return student_feat.sum() * 0
        with torch.no_grad():
            feat_n = F.normalize(teacher_feat.float(), dim=1)
            weight = sum(_mask_from_normalised(q, w, feat_n, self.min_value) ** 2
                         for q, w in zip(queries, quality))
        diff = student_feat.float() - teacher_feat.float()
        return (weight * diff * diff).mean() * self.loss_weight
