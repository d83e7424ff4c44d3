"""Pearson-correlation knowledge distillation (PKD).

Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson Correlation
Coefficient", NeurIPS 2022 (arXiv 2207.02039): standardise every channel of both maps to zero
mean and unit variance, then imitate with a halved MSE,

    ``L = 1/2 * mean_{n,c,h,w} (S_hat - T_hat)^2``,  ``X_hat_c = (X_c - mean(X_c)) / std(X_c)``,

which equals ``mean_c (1 - r_c) * (M - 1) / M`` with ``r_c`` the Pearson correlation of
channel c between student and teacher over its ``M = N*H*W`` values. The loss therefore
ignores each channel's scale and offset and keeps only the correlation.

Follows MMRazor's ``PKDLoss`` (the authors' code): statistics over (N, H, W) per channel,
unbiased ``std`` plus 1e-6, ``F.mse_loss(...) / 2``, and a bilinear resize of the student to
the teacher's size (or the reverse) when spatial sizes differ. MMRazor compares only the
heights; here any size difference triggers the resize.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_weight

__all__ = ['pkd_loss', 'PKDLoss']


def _standardize_channels(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """(N, C, H, W) -> same shape, each channel standardised over its N*H*W values."""
    var, mean = torch.var_mean(feat, dim=(0, 2, 3), keepdim=True)  # unbiased, as MMRazor
    return (feat - mean) / (var.sqrt() + eps)


def pkd_loss(preds_S: Tensor, preds_T: Tensor, resize_stu: bool = True) -> Tensor:
    """PKD between student and teacher maps.

    Args:
        preds_S: student map, (N, C, H, W).
        preds_T: teacher map, (N, C, H', W'); detached.
        resize_stu: when the spatial sizes differ, bilinearly resize the student to the
            teacher's size (True) or the teacher to the student's (False),
            ``align_corners=False``.

    Returns:
        ``mean_{n,c,h,w} (S_hat - T_hat)^2 / 2``, a scalar (mean over N*C*H*W). An empty
        input, or one with a single value per channel (no correlation defined; MMRazor's
        unbiased std would give NaN), gives a graph-connected zero.
    """
    if preds_S.dim() != 4 or preds_T.dim() != 4:
        raise ValueError(f'pkd_loss expects (N, C, H, W) maps, got {tuple(preds_S.shape)} '
                         f'and {tuple(preds_T.shape)}')
    if preds_S.shape[:2] != preds_T.shape[:2]:
        raise ValueError(f'pkd_loss: student {tuple(preds_S.shape)} and teacher '
                         f'{tuple(preds_T.shape)} differ in batch or channels; '
                         'add a projector')
    preds_T = preds_T.detach()
    if preds_S.numel() == 0 or preds_T.numel() == 0:
        return preds_S.sum() * 0
    if preds_S.shape[2:] != preds_T.shape[2:]:
        if resize_stu:
            preds_S = F.interpolate(preds_S, size=preds_T.shape[2:], mode='bilinear',
                                    align_corners=False)
        else:
            preds_T = F.interpolate(preds_T, size=preds_S.shape[2:], mode='bilinear',
                                    align_corners=False)
    if preds_S.numel() // preds_S.shape[1] < 2:
        return preds_S.sum() * 0
    norm_S = _standardize_channels(preds_S)
    norm_T = _standardize_channels(preds_T)
    return F.mse_loss(norm_S, norm_T) / 2


@MODELS.register_module()
class PKDLoss(nn.Module):
    """Registered wrapper of :func:`pkd_loss`; logged as ``loss_pkd``.

    Args:
        loss_weight: multiplier of the loss (the official detection configs use 6 for
            Faster R-CNN / Swin teachers and 10 for RetinaNet, FCOS, RepPoints teachers).
        resize_stu: see :func:`pkd_loss`.
    """

    loss_name = 'pkd'

    def __init__(self, loss_weight: float = 1.0, resize_stu: bool = True) -> None:
        super().__init__()
        self.loss_weight = check_weight('PKDLoss', 'loss_weight', loss_weight)
        self.resize_stu = resize_stu

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, C, H, W) x 2 -> scalar."""
        return self.loss_weight * pkd_loss(preds_S, preds_T, self.resize_stu)
