"""ScaleKD's dual-view feature mimicking losses (Fan et al., "ScaleKD: Strong Vision
Transformers Could Be Excellent Teachers", NeurIPS 2024, Sec. 3.2).

Official code: deep-optimization/ScaleKD, ``FreqMaskingDistillLossv2.get_spat_loss`` /
``get_freq_loss`` (``mmcls/models/dis_losses/fmdv2.py``):

* spatial:   ``alpha_0 * sum((n(S) - n(T))^2) / B``, ``n`` = L2 normalisation over channels;
* frequency: ``alpha_1 * sum((n(F(S)) - n(F(T)))^2) / B``,
  ``F(x) = IDCT2(DCT2(x) with the DC coefficient zeroed)`` per channel.

The official DCT is the unnormalised DCT-II built for square maps (one ``H x H`` matrix for
both axes); here it is the orthonormal DCT-II with separate row/column matrices, so
non-square detection maps work. Because the transform is inverted right after zeroing DC,
``F(x)`` is the same for any DCT scaling: it removes each channel's spatial mean
(``F(x) = x - mean_HW(x)``), which :func:`frequency_filter` states and the tests check.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_weight

__all__ = ['dct_matrix', 'dct2', 'idct2', 'frequency_filter', 'scalekd_spatial_loss',
           'scalekd_frequency_loss', 'ScaleKDSpatialLoss', 'ScaleKDFrequencyLoss']


def dct_matrix(n: int, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Orthonormal DCT-II matrix ``D`` (n, n): ``D[k, i] = a_k cos(pi (2i + 1) k / (2n))``,
    ``a_0 = sqrt(1/n)``, ``a_k = sqrt(2/n)``; ``D D^T = I``."""
    i = torch.arange(n, device=device, dtype=torch.float64)
    d = torch.cos(math.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    d[0] = d[0] / math.sqrt(2.0)
    return d.to(dtype)


def dct2(x: Tensor) -> Tensor:
    """2-D orthonormal DCT-II over the last two dims: ``D_H x D_W^T``."""
    dh = dct_matrix(x.shape[-2], x.device, x.dtype)
    dw = dct_matrix(x.shape[-1], x.device, x.dtype)
    return dh @ x @ dw.T


def idct2(x: Tensor) -> Tensor:
    """Inverse of :func:`dct2`: ``D_H^T X D_W``."""
    dh = dct_matrix(x.shape[-2], x.device, x.dtype)
    dw = dct_matrix(x.shape[-1], x.device, x.dtype)
    return dh.T @ x @ dw


def frequency_filter(x: Tensor) -> Tensor:
    """``IDCT2(DCT2(x) with [..., 0, 0] = 0)``: each channel minus its spatial mean."""
    freq = dct2(x)
    keep = torch.ones_like(freq)
    keep[..., 0, 0] = 0
    return idct2(freq * keep)


def _check(preds_S: Tensor, preds_T: Tensor, name: str) -> None:
    if preds_S.shape != preds_T.shape or preds_S.dim() != 4:
        raise ValueError(f'{name}: expected two equal (B, C, H, W) maps, got '
                         f'{tuple(preds_S.shape)} and {tuple(preds_T.shape)}')


def scalekd_spatial_loss(preds_S: Tensor, preds_T: Tensor) -> Tensor:
    """Spatial-view mimicking: (B, C, H, W) x 2 -> ``sum((n_c(S) - n_c(T))^2) / B``.

    ``n_c`` L2-normalises each pixel's channel vector (``F.normalize(dim=1)``); the sum is over
    C, H, W and the batch, divided by B (official ``MSELoss(reduction='sum') / N``).
    Empty input -> graph-connected zero.
    """
    _check(preds_S, preds_T, 'scalekd_spatial_loss')
    if preds_S.numel() == 0:
        return preds_S.sum() * 0
    s = F.normalize(preds_S, dim=1)
    t = F.normalize(preds_T.detach(), dim=1)
    return (s - t).pow(2).sum() / preds_S.shape[0]


def scalekd_frequency_loss(preds_S: Tensor, preds_T: Tensor) -> Tensor:
    """Frequency-view mimicking: the spatial loss of :func:`frequency_filter` ed maps
    (DC removed). (B, C, H, W) x 2 -> scalar, sum / B. Empty input -> graph zero."""
    _check(preds_S, preds_T, 'scalekd_frequency_loss')
    if preds_S.numel() == 0:
        return preds_S.sum() * 0
    return scalekd_spatial_loss(frequency_filter(preds_S), frequency_filter(preds_T.detach()))


@MODELS.register_module()
class ScaleKDSpatialLoss(nn.Module):
    """Registered :func:`scalekd_spatial_loss`; ``loss_weight`` is the paper's ``alpha_0``."""

    loss_name = 'spatial'

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_weight('ScaleKDSpatialLoss', 'loss_weight', loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(B, C, H, W) x 2 -> scalar."""
        return self.loss_weight * scalekd_spatial_loss(preds_S, preds_T)


@MODELS.register_module()
class ScaleKDFrequencyLoss(nn.Module):
    """Registered :func:`scalekd_frequency_loss`; ``loss_weight`` is ``alpha_1``."""

    loss_name = 'frequency'

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_weight('ScaleKDFrequencyLoss', 'loss_weight', loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(B, C, H, W) x 2 -> scalar."""
        return self.loss_weight * scalekd_frequency_loss(preds_S, preds_T)
