"""Pixel-wise knowledge distillation on segmentation logits.

Hinton et al.'s soft-target KD applied at every pixel, the segmentation baseline of
Liu et al., "Structured Knowledge Distillation for Semantic Segmentation", CVPR 2019, and of
CIRKD (Yang et al., CVPR 2022):

    ``L = tau^2 / (N*h*w) * sum_{n,h,w} KL(p_T(n,h,w) || p_S(n,h,w))``,
    ``p_X(n,h,w) = softmax_C(x_{n,:,h,w} / tau)``,

i.e. the KL between the class distributions at each pixel, teacher as the target, averaged
over pixels.

Reduction follows CIRKD ``losses/kd.py::CriterionKD`` (logits reshaped to (N*h*w, C),
``F.kl_div(..., reduction='batchmean')``, times ``tau^2``): a mean per pixel.

Trap: MMRazor's ``KLDivergence`` applied straight to (N, C, H, W) maps does not give this.
With ``reduction='batchmean'`` it divides the total by N only, i.e. H*W times larger than
the per-pixel mean; with ``reduction='mean'`` it divides by N*C*H*W, i.e. C times smaller.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_positive, check_weight

__all__ = ['pixel_wise_kd', 'PixelWiseKD']


def pixel_wise_kd(preds_S: Tensor, preds_T: Tensor, tau: float = 1.0) -> Tensor:
    """Per-pixel KL divergence between teacher and student class distributions.

    Args:
        preds_S: student logits, (N, C, h, w); bilinearly resized to the teacher's size
            (``align_corners=False``) when the sizes differ.
        preds_T: teacher logits, (N, C, h', w'); detached.
        tau: temperature.

    Returns:
        ``tau^2 * sum_{n,c,h,w} p_T (log p_T - log p_S) / (N*h*w)``, a scalar (summed over
        classes, mean over pixels). Empty input gives a graph-connected zero.
    """
    if preds_S.dim() != 4 or preds_T.dim() != 4:
        raise ValueError(f'pixel_wise_kd expects (N, C, h, w) logits, got '
                         f'{tuple(preds_S.shape)} and {tuple(preds_T.shape)}')
    if preds_S.shape[:2] != preds_T.shape[:2]:
        raise ValueError(f'pixel_wise_kd: student {tuple(preds_S.shape)} and teacher '
                         f'{tuple(preds_T.shape)} differ in batch or classes')
    preds_T = preds_T.detach()
    if preds_S.numel() == 0 or preds_T.numel() == 0:
        return preds_S.sum() * 0
    if preds_S.shape[2:] != preds_T.shape[2:]:
        preds_S = F.interpolate(preds_S, size=preds_T.shape[2:], mode='bilinear',
                                align_corners=False)
    n, _, h, w = preds_T.shape
    log_p_s = F.log_softmax(preds_S / tau, dim=1)
    log_p_t = F.log_softmax(preds_T / tau, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl * (tau ** 2) / (n * h * w)


@MODELS.register_module()
class PixelWiseKD(nn.Module):
    """Registered wrapper of :func:`pixel_wise_kd`; logged as ``loss_pixel_kd``.

    Student and teacher must predict the same classes, so no projector is expected
    (``requires_equal_channels`` keeps its default, True).

    Args:
        tau: temperature (CIRKD's default is 1).
        loss_weight: multiplier of the loss (CIRKD's ``--lambda-kd``, 1.0 in its scripts).
    """

    loss_name = 'pixel_kd'

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.tau = check_positive('PixelWiseKD', 'tau', tau, 'the softmax temperature')
        self.loss_weight = check_weight('PixelWiseKD', 'loss_weight', loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, C, h, w) x 2 -> scalar."""
        return self.loss_weight * pixel_wise_kd(preds_S, preds_T, self.tau)
