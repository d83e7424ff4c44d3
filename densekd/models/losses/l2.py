"""FitNet-style L2 feature loss.

Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015, Eq. (3):
``L_hint = 1/2 * || u_h(x) - r(v_g(x)) ||^2`` with ``r`` the (trainable) adapter, applied
here by the component's projector before the loss sees the student feature.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_choice, check_weight

__all__ = ['l2_loss', 'L2Loss']


def l2_loss(preds_S: Tensor, preds_T: Tensor, reduction: str = 'mean',
            normalize: bool = False) -> Tensor:
    """Squared L2 distance between student and teacher features.

    Args:
        preds_S: student feature (already adapted), (N, C, H, W) or any (N, ...).
        preds_T: teacher feature, same shape; treated as a constant (detached).
        reduction: ``'mean'``: sum of squares / (N*C*H*W), i.e. ``F.mse_loss``;
            ``'batchmean'``: sum of squares / N (FitNet's per-sample norm, without the 1/2).
        normalize: L2-normalise each sample's flattened feature first (MMRazor's
            ``L2Loss`` default; off for a classic FitNet).

    Returns:
        A scalar. An empty input gives a graph-connected zero.
    """
    if preds_S.shape != preds_T.shape:
        raise ValueError(f'l2_loss: student {tuple(preds_S.shape)} and teacher '
                         f'{tuple(preds_T.shape)} differ; add a projector or resize')
    preds_T = preds_T.detach()
    if preds_S.numel() == 0:
        return preds_S.sum() * 0
    if normalize:
        preds_S = F.normalize(preds_S.flatten(1), dim=1)
        preds_T = F.normalize(preds_T.flatten(1), dim=1)
    sq = (preds_S - preds_T).pow(2).sum()
    if reduction == 'mean':
        return sq / preds_S.numel()
    if reduction == 'batchmean':
        return sq / preds_S.shape[0]
    raise ValueError(f"reduction must be 'mean' or 'batchmean', got {reduction!r}")


@MODELS.register_module()
class L2Loss(nn.Module):
    """Registered wrapper of :func:`l2_loss`; logged as ``loss_l2``.

    Args:
        loss_weight: multiplier of the loss.
        reduction: see :func:`l2_loss`.
        normalize: see :func:`l2_loss`.
    """

    loss_name = 'l2'

    def __init__(self, loss_weight: float = 1.0, reduction: str = 'mean',
                 normalize: bool = False) -> None:
        super().__init__()
        self.loss_weight = check_weight('L2Loss', 'loss_weight', loss_weight)
        self.reduction = check_choice('L2Loss', 'reduction', reduction, ('mean', 'batchmean'))
        self.normalize = normalize

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, C, H, W) x 2 -> scalar."""
        return self.loss_weight * l2_loss(preds_S, preds_T, self.reduction, self.normalize)
