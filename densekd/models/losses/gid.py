"""GID losses (General Instance Distillation, Dai et al., CVPR 2021).

Three losses on the K general instances (GIs) per image chosen by
:class:`densekd.models.selectors.GeneralInstanceSelector`:

* feature (Eq. 3): ``sum_r sum_{c,h,w} (t_r - s_r)^2 / (R * h * w)`` on RoIAligned FPN
  features of the R instances (channels summed, instances and pooled cells averaged),
  as the author's ``distill_loss_feature`` (L2 mode);
* relation (Eq. 4-5, RKD distance): ``psi(x)_{ij} = ||x_i - x_j||_2 / mu`` with ``mu`` the
  mean off-diagonal distance; ``sum_{i != j} smoothL1_beta(psi(t)_{ij}, psi(s)_{ij})
  / (R^2 - R)``, zero for R < 3 (author's ``loss_RkdDistance``). Per image and averaged
  over the images with R >= 3 (the paper's instances of one image, our default), or over
  all instances of the batch at once (``per_image=False``, the author code);
* response (Eq. 6): at the priors assigned to a GI, ``BCE(sigmoid^-1 s, sigmoid(t))``
  summed over classes, and ``|s - t|`` summed over the 4 regression values, each divided
  by the number of assigned priors (author's ``distill_loss_response``, smooth-L1 with
  beta 0 = L1).

Every loss is a graph-connected zero (``x.sum() * 0``) when it has no instance or prior.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_range, check_weight

__all__ = ['gid_feature_loss', 'gid_relation_loss', 'gid_response_loss',
           'normalized_distances', 'GIDFeatureLoss', 'GIDRelationLoss', 'GIDResponseLoss']


def gid_feature_loss(s_feats: Tensor, t_feats: Tensor) -> Tensor:
    """GID feature loss: (R, C, h, w) x2 -> scalar, summed over C, mean over R*h*w."""
    if s_feats.shape != t_feats.shape:
        raise ValueError(f'student {tuple(s_feats.shape)} vs teacher {tuple(t_feats.shape)}')
    if s_feats.numel() == 0:
        return s_feats.sum() * 0
    count = s_feats.shape[0] * s_feats[0, 0].numel()
    return (s_feats - t_feats).pow(2).sum() / count


def normalized_distances(x: Tensor, eps: float = 1e-12) -> Tensor:
    """RKD distance potential: (R, D) -> (R, R), ``||x_i - x_j|| / mean_{i != j} ||x_i - x_j||``.

    Squared distances are clamped at ``eps`` before the square root (finite gradients for
    equal rows) and the diagonal is zero, as in the author's ``pdist``.
    """
    sq = x.pow(2).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2 * x @ x.t()).clamp(min=eps).sqrt()
    dist = dist * (1 - torch.eye(len(x), dtype=x.dtype, device=x.device))
    mean = dist.sum() / max(len(x) * (len(x) - 1), 1)
    return dist / mean.clamp(min=eps)


def _relation(s: Tensor, t: Tensor, beta: float) -> Tensor:
    r = s.shape[0]
    s_d = normalized_distances(s.flatten(1))
    t_d = normalized_distances(t.flatten(1))
    return F.smooth_l1_loss(s_d, t_d, beta=beta, reduction='sum') / (r * r - r)


def gid_relation_loss(s_feats: Tensor, t_feats: Tensor, batch_ids: Tensor | None = None,
                      beta: float = 1.0, min_instances: int = 3) -> Tensor:
    """GID relation (RKD distance) loss: (R, ...) x2 -> scalar.

    Args:
        s_feats: student instance features (R, ...), flattened per instance; its width may
            differ from the teacher's (distances are compared, not features).
        t_feats: teacher instance features (R, ...).
        batch_ids: (R,) image of each instance: the loss is computed per image and averaged
            over the images with at least ``min_instances`` (paper). None: one loss over all
            R instances of the batch (author code).
        beta: smooth-L1 beta (author: 1.0).
        min_instances: fewer instances give no loss (author: 3; at least 2 are always
            needed: one instance has no pair).
    """
    zero = s_feats.sum() * 0
    if batch_ids is None:
        if s_feats.shape[0] < max(min_instances, 2):
            return zero
        return _relation(s_feats, t_feats, beta)
    _, image, counts = batch_ids.unique(return_inverse=True, return_counts=True)
    kept = counts >= max(min_instances, 2)  # one instance has no pair to relate
    if not bool(kept.any()):
        return zero
    use = kept[image]
    return _relation_per_image(s_feats[use].flatten(1), t_feats[use].flatten(1),
                               image[use], counts, kept, beta)


def _relation_per_image(s: Tensor, t: Tensor, image: Tensor, counts: Tensor, kept: Tensor,
                        beta: float, eps: float = 1e-12) -> Tensor:
    """The per-image relation losses of every image at once, averaged over the images.

    One (R, R) distance matrix for all rows, the pairs across images masked out: the
    values of :func:`normalized_distances` and :func:`_relation` image by image, with the
    work of one image (the per-image loop cost more than the arithmetic on K=10 GIs).

    Args:
        s, t: (R, D_s), (R, D_t) rows of the images taking part.
        image: (R,) image of each row (index into ``counts``).
        counts: instances per image; kept: the images taking part.
    """
    pairs = image[:, None] == image[None, :]
    pairs.fill_diagonal_(False)
    num_pairs = (counts * (counts - 1)).to(s.dtype)  # per image

    def psi(x: Tensor) -> Tensor:
        sq = x.pow(2).sum(dim=1)
        dist = (sq[:, None] + sq[None, :] - 2 * x @ x.t()).clamp(min=eps).sqrt() * pairs
        mean = x.new_zeros(len(counts)).index_add_(0, image, dist.sum(dim=1)) / \
            num_pairs.clamp(min=1)
        return dist / mean.clamp(min=eps)[image, None]

    per_pair = F.smooth_l1_loss(psi(s), psi(t), beta=beta, reduction='none') * pairs
    per_image = s.new_zeros(len(counts)).index_add_(0, image, per_pair.sum(dim=1))
    return (per_image / num_pairs.clamp(min=1))[kept].mean()


def gid_response_loss(s_cls: Tensor, t_cls: Tensor, s_reg: Tensor, t_reg: Tensor,
                      mask: Tensor) -> tuple[Tensor, Tensor]:
    """GID response loss on the priors of ``mask``.

    Args:
        s_cls: student class logits (M, C).
        t_cls: teacher class logits (M, C).
        s_reg: student regression (M, 4), in the head's encoding.
        t_reg: teacher regression (M, 4).
        mask: (M,) bool, the priors assigned to a GI.

    Returns:
        ``(cls, reg)``: BCE with targets ``sigmoid(t_cls)``, summed over classes, and L1
        summed over the 4 values, both divided by ``max(mask.sum(), 1)``.
    """
    num = mask.sum().clamp(min=1)
    s_cls, t_cls, s_reg, t_reg = s_cls[mask], t_cls[mask], s_reg[mask], t_reg[mask]
    cls = F.binary_cross_entropy_with_logits(
        s_cls, t_cls.sigmoid(), reduction='sum') / num if len(s_cls) else s_cls.sum() * 0
    reg = (s_reg - t_reg).abs().sum() / num if len(s_reg) else s_reg.sum() * 0
    return cls, reg


@MODELS.register_module()
class GIDFeatureLoss(nn.Module):
    """:func:`gid_feature_loss` times ``loss_weight`` (paper: 5e-3)."""

    def __init__(self, loss_weight: float = 5e-3) -> None:
        super().__init__()
        self.loss_weight = check_weight('GIDFeatureLoss', 'loss_weight', loss_weight)

    def forward(self, s_feats: Tensor, t_feats: Tensor) -> Tensor:
        """(R, C, h, w) x2 -> scalar."""
        return self.loss_weight * gid_feature_loss(s_feats, t_feats)


@MODELS.register_module()
class GIDRelationLoss(nn.Module):
    """:func:`gid_relation_loss` times ``loss_weight`` (paper: 40).

    Args:
        loss_weight: weight.
        per_image: paper (True) or the author's batch-wide variant (False).
        beta: smooth-L1 beta.
    """

    def __init__(self, loss_weight: float = 40.0, per_image: bool = True,
                 beta: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_weight('GIDRelationLoss', 'loss_weight', loss_weight)
        self.per_image = per_image
        self.beta = check_range('GIDRelationLoss', 'beta', beta, 0.0, float('inf'))

    def forward(self, s_feats: Tensor, t_feats: Tensor, batch_ids: Tensor) -> Tensor:
        """(R, ...) x2 and (R,) image ids -> scalar."""
        ids = batch_ids if self.per_image else None
        return self.loss_weight * gid_relation_loss(s_feats, t_feats, ids, beta=self.beta)


@MODELS.register_module()
class GIDResponseLoss(nn.Module):
    """:func:`gid_response_loss` times ``cls_weight`` / ``reg_weight`` (paper: 0.1 / 0.1)."""

    def __init__(self, cls_weight: float = 0.1, reg_weight: float = 0.1) -> None:
        super().__init__()
        self.cls_weight = check_weight('GIDResponseLoss', 'cls_weight', cls_weight)
        self.reg_weight = check_weight('GIDResponseLoss', 'reg_weight', reg_weight)

    def forward(self, s_cls: Tensor, t_cls: Tensor, s_reg: Tensor, t_reg: Tensor,
                mask: Tensor) -> tuple[Tensor, Tensor]:
        """(M, C), (M, C), (M, 4), (M, 4), (M,) -> (cls, reg) scalars."""
        cls, reg = gid_response_loss(s_cls, t_cls, s_reg, t_reg, mask)
        return self.cls_weight * cls, self.reg_weight * reg
