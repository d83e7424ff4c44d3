"""Masked Generative Distillation (MGD).

Yang et al., "Masked Generative Distillation", ECCV 2022 (arXiv 2205.01529), Sec. 3: a random
spatial mask ``M`` drops a fraction ``lambda`` of the student's locations, a generation block
``G = Conv3x3 -> ReLU -> Conv3x3`` must rebuild the full teacher feature from what is left, and

    ``L_dis = sum_{c,h,w} (T_{c,h,w} - G(f_align(S) * M)_{c,h,w})^2``,   ``L = alpha * L_dis``.

``f_align`` (a 1x1 conv when channel counts differ) is the component's projector here, so the
loss receives the student map already at the teacher's channel count.

Reduction follows the official code (yzd-v/MGD ``FeatureLoss.get_dis_loss``) and MMRazor's
``MGDConnector`` + ``MGDLoss``, which agree: the squared error is summed over C*H*W and
divided by the batch size N; ``alpha`` (``alpha_mgd``, 2e-5 in the one-stage detector
configs) is this module's ``loss_weight``. The mask follows the same rule,
``mat = rand(N, 1, H, W); mat = where(mat > 1 - lambda, 0, 1)``, but is drawn on the device of
the student map, where the official code draws on the CPU and copies the mask over
(``torch.rand(...).to(device)``): no host-to-device copy per step and level. On CPU a seed
gives the official mask; on CUDA the mask has the same distribution, but the CUDA generator
gives other draws than the CPU one for the same seed, so the official code's masks are not
reproduced draw for draw. The same seed gives the same mask on the same device type.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_positive, check_range, check_weight

__all__ = ['random_spatial_mask', 'mgd_loss', 'MGDLoss']


def random_spatial_mask(n: int, h: int, w: int, ratio: float, *,
                        generator: torch.Generator | None = None,
                        device: torch.device | str | None = None,
                        dtype: torch.dtype = torch.float32) -> Tensor:
    """MGD's random spatial mask: each location is dropped (0) with probability ``ratio``.

    Draws ``u = torch.rand(n, 1, h, w)`` in the default dtype on ``device`` and keeps a
    location where ``u <= 1 - ratio``, i.e. the official ``where(u > 1 - lambda, 0, 1)``.
    ``ratio=0`` keeps everything. A given seed (or ``generator`` state) gives the same mask
    on the same device type. On CPU that is the official code's mask; on CUDA it is another
    draw of the same distribution, because the official code draws on the CPU and moves the
    mask (``torch.rand(...).to(device)``) while this draws on the device (no copy per call).

    Args:
        n: batch size.
        h: height.
        w: width.
        ratio: fraction of locations masked, ``lambda_mgd`` in [0, 1].
        generator: optional torch RNG, for reproducible masks.
        device: device of the mask, and of the draw.
        dtype: dtype of the returned mask.

    Returns:
        A (n, 1, h, w) tensor of zeros and ones.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f'mask ratio must be in [0, 1], got {ratio}')
    u = torch.rand((n, 1, h, w), generator=generator, device=device)
    return (u <= 1 - ratio).to(dtype)


def mgd_loss(preds_S: Tensor, preds_T: Tensor, generation: Callable[[Tensor], Tensor],
             mask: Tensor) -> Tensor:
    """MGD distillation term for a given mask, without ``alpha``.

    Args:
        preds_S: student map, already at the teacher's channel count, (N, C, H, W).
        preds_T: teacher map, (N, C, H, W); detached.
        generation: the generation block ``G``, (N, C, H, W) -> (N, C, H, W).
        mask: broadcastable to ``preds_S``: (N, 1, H, W) spatial mask (MGD's detection and
            segmentation setting) or (N, C, 1, 1) channel mask.

    Returns:
        ``sum_{n,c,h,w} (G(S * mask) - T)^2 / N``, a scalar (summed over C*H*W, mean over N).
        An empty input gives a zero connected to the student and to the parameters of
        ``generation`` (so DDP sees them used).
    """
    if preds_S.shape != preds_T.shape:
        raise ValueError(f'mgd_loss: student {tuple(preds_S.shape)} and teacher '
                         f'{tuple(preds_T.shape)} differ; add a projector or resize')
    if preds_S.dim() != 4:
        raise ValueError(f'mgd_loss expects (N, C, H, W), got {preds_S.dim()}-d')
    preds_T = preds_T.detach()
    if preds_S.numel() == 0:
        zero = preds_S.sum() * 0
        if isinstance(generation, nn.Module):
            for p in generation.parameters():
                zero = zero + p.sum() * 0
        return zero
    generated = generation(preds_S * mask)
    return (generated - preds_T).pow(2).sum() / preds_S.shape[0]


@MODELS.register_module()
class MGDLoss(nn.Module):
    """MGD with its generation block; logged as ``loss_mgd``.

    Built once per level by :class:`~densekd.models.components.FeatureMimic`
    (``per_level = True``), which fills ``channels`` from the teacher's map; the official
    ``align`` 1x1 conv is the component's projector (e.g. ``densekd.ConvProjector``).

    Args:
        channels: teacher channel count C, the width of the generation block.
        loss_weight: ``alpha_mgd``; 2e-5 for one-stage detectors and segmentation,
            5e-7 for two-stage detectors in the official configs.
        mask_ratio: ``lambda_mgd``, the fraction of locations masked; 0.65 for one-stage
            detectors, 0.45 for two-stage ones, 0.75 for segmentation in the official configs.
    """

    loss_name = 'mgd'
    per_level = True

    def __init__(self, channels: int, loss_weight: float = 2e-5,
                 mask_ratio: float = 0.65) -> None:
        super().__init__()
        check_positive('MGDLoss', 'channels', channels, 'filled from the teacher map')
        self.channels = channels
        self.loss_weight = check_weight('MGDLoss', 'loss_weight', loss_weight)
        self.mask_ratio = check_range('MGDLoss', 'mask_ratio', mask_ratio, 0.0, 1.0)
        # same layout and attribute name as the official FeatureLoss / MGDConnector
        self.generation = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1))

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, C, H, W) x 2 -> scalar; draws a fresh mask each call from the global RNG of
        the student map's device (see :func:`random_spatial_mask`)."""
        if preds_S.dim() != 4:
            raise ValueError(f'MGDLoss expects (N, C, H, W), got {preds_S.dim()}-d')
        if preds_S.shape[1] != self.channels:
            raise ValueError(f'MGDLoss built for {self.channels} channels got a student map '
                             f'{tuple(preds_S.shape)}; project it to the teacher channels')
        n, _, h, w = preds_S.shape
        mask = random_spatial_mask(n, h, w, self.mask_ratio, device=preds_S.device,
                                   dtype=preds_S.dtype)
        return self.loss_weight * mgd_loss(preds_S, preds_T, self.generation, mask)
