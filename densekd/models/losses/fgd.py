"""Focal and Global Distillation (FGD).

Yang et al., "Focal and Global Knowledge Distillation for Detectors", CVPR 2022. Per FPN level,
with ``F_S`` (already aligned to the teacher's channels) and ``F_T`` of shape (N, C, H, W):

* attention at temperature ``T``: ``A_sp = H*W * softmax_HW(mean_c |F| / T)`` and
  ``A_ch = C * softmax_C(mean_HW |F| / T)``.
* focal (feature) loss: the teacher's attention weights both terms,
  ``L_fg = sum(M_fg * A_sp^T * A_ch^T * (F_S - F_T)^2) / N``, ``L_bg`` likewise with ``M_bg``.
* attention loss: ``L_at = sum|A_ch^S - A_ch^T| / N + sum|A_sp^S - A_sp^T| / N``.
* global (relation) loss through a GcBlock per network,
  ``L_rela = sum(GC_S(F_S) - GC_T(F_T))^2 / N``.
* Total: ``alpha * L_fg + beta * L_bg + gamma * L_at + lambda * L_rela``.

Reductions, mask construction and initialisation follow the official code (yzd-v/FGD
``mmdet/distillation/losses/fgd.py::FeatureLoss``, HEAD c03a6cf), which the MMRazor port
(PR #463) reproduces; the two differ only in the shape used to map boxes onto the grid
(``box_scale`` below). The official code weighs by ``sqrt`` factors inside ``MSELoss(sum)``;
here the weights multiply the squared difference directly (the same value).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_choice, check_positive, check_weight

__all__ = ['fgd_attention', 'fgd_masks', 'fgd_masks_levels', 'fgd_focal_loss',
           'fgd_attention_loss', 'fgd_global_loss', 'fgd_focal_and_global_losses',
           'fgd_loss_levels', 'GcBlock', 'FGDLoss']

BOX_SCALES = ('img_shape', 'batch_input_shape')


def fgd_attention(feat: Tensor, temp: float = 0.5) -> tuple[Tensor, Tensor]:
    """Spatial and channel attention of FGD.

    Args:
        feat: feature map, (N, C, H, W).
        temp: temperature ``T``.

    Returns:
        ``A_sp = H*W * softmax_HW(mean_c |F| / T)``, (N, H, W), mean 1 per image, and
        ``A_ch = C * softmax_C(mean_HW |F| / T)``, (N, C), mean 1 per image.
    """
    n, c, h, w = feat.shape
    value = feat.abs()
    spatial = h * w * torch.softmax(value.mean(dim=1).reshape(n, h * w) / temp, dim=1)
    channel = c * torch.softmax(value.mean(dim=(2, 3)) / temp, dim=1)
    return spatial.reshape(n, h, w), channel


def fgd_masks(boxes: Sequence[Tensor], scales: Sequence[Sequence[float]],
              size: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Foreground (scale) and background masks of FGD from ground-truth boxes.

    Box ``(x1, y1, x2, y2)`` of an image whose pixel frame is ``scale = (h_s, w_s)`` is mapped
    to the (H, W) grid by ``x * W / w_s``, ``y * H / h_s`` and covers the cells
    ``floor(y1)..ceil(y2)`` x ``floor(x1)..ceil(x2)``, both ends inclusive (as the official
    slices ``[hmin:hmax+1, wmin:wmax+1]``: a box always covers at least one cell, and one
    more row/column than its extent when it ends inside a cell). Each covered cell gets
    ``1 / (rows * cols)`` with the unclipped counts; overlapping boxes keep the max.
    ``M_bg = 1[M_fg == 0]``, divided by its sum per image when that is nonzero.

    A box that starts left of or above the grid (``floor(x1) < 0`` or ``floor(y1) < 0``)
    covers the cells from 0 here, clipped as boxes past the right and bottom edges are in
    both codes. The official slice starts at that negative index, which Python counts from
    the far end, so there the box covers no cell (or, if it reaches the last column or row,
    only the cells from ``W + floor(x1)``): an indexing artefact, not followed (tested).
    mmdet's pipelines clip boxes to the image (``clip_object_border``), so such boxes are
    rare, and every box inside the image gets the official mask.

    Args:
        boxes: per image a (K, 4) tensor of x1, y1, x2, y2 in pixels; K may be 0.
        scales: per image the (h, w) of the pixel frame the grid spans.
        size: (H, W) of the feature grid.

    Returns:
        ``M_fg`` and ``M_bg``, each (N, H, W), float32 on the boxes' device.
    """
    return fgd_masks_levels(boxes, scales, [size])[0]  # the one-grid case


@functools.lru_cache(maxsize=16)
def _grid_cells(hw: tuple[tuple[int, int], ...], device: str) -> tuple[Tensor, Tensor, Tensor]:
    """Grid index, row and column of every cell of the grids ``hw``, side by side (made
    outside inference mode: the cached tensors are reused in training)."""
    with torch.inference_mode(False):
        level = torch.cat([torch.full((h * w,), i, device=device)
                           for i, (h, w) in enumerate(hw)])
        rows = torch.cat([torch.arange(h, device=device).repeat_interleave(w) for h, w in hw])
        cols = torch.cat([torch.arange(w, device=device).repeat(h) for h, w in hw])
    return level, rows, cols


def fgd_masks_levels(boxes: Sequence[Tensor], scales: Sequence[Sequence[float]],
                     sizes: Sequence[Sequence[int]]) -> list[tuple[Tensor, Tensor]]:
    """:func:`fgd_masks` for several grids (the FPN levels) in one pass.

    :func:`fgd_masks` is its one-grid case; with several grids each gets the masks it would
    get alone (bitwise: the same float32 operations per box and cell, and the background
    counts are exact integers), the boxes mapped onto every grid at once and the cells of
    all grids side by side.

    Returns:
        Per size, ``(M_fg, M_bg)``, each (N, H, W) (views into one (N, sum H*W) tensor).
    """
    fg, bg = _fgd_masks_cells(boxes, scales, sizes)
    n = len(boxes)
    out, offset = [], 0
    for h, w in ((int(s[0]), int(s[1])) for s in sizes):
        out.append((fg[:, offset:offset + h * w].reshape(n, h, w),
                    bg[:, offset:offset + h * w].reshape(n, h, w)))
        offset += h * w
    return out


def _fgd_masks_cells(boxes: Sequence[Tensor], scales: Sequence[Sequence[float]],
                     sizes: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """:func:`fgd_masks_levels` as two (N, sum H*W) tensors, the grids' cells side by side."""
    n = len(boxes)
    device = boxes[0].device if n else torch.device('cpu')
    hw = tuple((int(s[0]), int(s[1])) for s in sizes)
    level, rows, cols = _grid_cells(hw, str(device))  # (T,) each: every cell of every grid
    counts = [int(b.numel() // 4) for b in boxes]
    fg = torch.zeros(n, len(level), device=device)
    if sum(counts):
        box = torch.cat([b.detach().reshape(-1, 4) for b in boxes]).to(device, torch.float32)
        index = torch.repeat_interleave(torch.arange(n, device=device),
                                        torch.tensor(counts, device=device))
        grid = torch.tensor([[[w / float(s[1]), h / float(s[0])] for s in scales]
                             for h, w in hw], device=device, dtype=torch.float32)  # (L, N, 2)
        box = box[:, None, :] * grid[:, index].transpose(0, 1).repeat(1, 1, 2)  # (K, L, 4)
        wmin, hmin = box[..., 0].floor(), box[..., 1].floor()
        wmax, hmax = box[..., 2].ceil(), box[..., 3].ceil()
        area = 1.0 / ((hmax + 1 - hmin) * (wmax + 1 - wmin))  # (K, L)
        # each box's bounds on each cell's grid: one gather for the five (K, L) values
        hmin, hmax, wmin, wmax, area = torch.stack([hmin, hmax, wmin, wmax, area],
                                                   0)[:, :, level].unbind(0)  # (K, T) each
        inside = (rows >= hmin) & (rows <= hmax) & (cols >= wmin) & (cols <= wmax)
        value = inside * area  # max over each image's boxes; values >= 0 = init
        fg.scatter_reduce_(0, index[:, None].expand_as(value), value, 'amax')
    bg = (fg == 0).float()
    per_level = bg.new_zeros(n, len(hw)).index_add_(1, level, bg)
    bg = bg / per_level.clamp(min=1.0)[:, level]  # all-zero rows stay zero
    return fg, bg


def fgd_focal_loss(preds_S: Tensor, preds_T: Tensor, mask_fg: Tensor, mask_bg: Tensor,
                   spatial_T: Tensor, channel_T: Tensor) -> tuple[Tensor, Tensor]:
    """Focal feature loss of FGD, weighted by the teacher's attention.

    Args:
        preds_S: student map, (N, C, H, W).
        preds_T: teacher map, (N, C, H, W); detached.
        mask_fg: foreground mask, (N, H, W).
        mask_bg: background mask, (N, H, W).
        spatial_T: teacher spatial attention, (N, H, W); detached.
        channel_T: teacher channel attention, (N, C); detached.

    Returns:
        ``(L_fg, L_bg)``: ``sum(M * A_sp^T * A_ch^T * (F_S - F_T)^2) / N``, summed over
        C, H, W and averaged over N, as the official ``MSELoss(reduction='sum') / N``.
    """
    n = preds_S.shape[0]
    sq = (preds_S - preds_T.detach()).pow(2) * channel_T.detach()[:, :, None, None]
    per_cell = sq.sum(dim=1) * spatial_T.detach()  # (N, H, W)
    return (per_cell * mask_fg).sum() / n, (per_cell * mask_bg).sum() / n


def fgd_attention_loss(spatial_S: Tensor, channel_S: Tensor, spatial_T: Tensor,
                       channel_T: Tensor) -> Tensor:
    """Attention loss of FGD (L1 between student and teacher attention).

    Args:
        spatial_S: (N, H, W). channel_S: (N, C). spatial_T, channel_T: the teacher's, detached.

    Returns:
        ``sum|A_ch^S - A_ch^T| / N + sum|A_sp^S - A_sp^T| / N``, a scalar.
    """
    n = spatial_S.shape[0]
    return ((channel_S - channel_T.detach()).abs().sum() / n
            + (spatial_S - spatial_T.detach()).abs().sum() / n)


class GcBlock(nn.Module):
    """Global context block of FGD's global distillation (GCNet's block, add fusion).

    ``out = F + W_v2(ReLU(LN(W_v1(sum_hw softmax_hw(W_k F) * F))))``: context modelling by a
    1x1 conv C->1 and a softmax over H*W, then the channel-add transform
    ``Conv1x1(C->C/2) -> LayerNorm([C/2, 1, 1]) -> ReLU -> Conv1x1(C/2->C)``.
    Initialised as the official ``reset_parameters``: ``conv_mask`` Kaiming-normal (fan_in,
    ReLU gain) with zero bias, the last conv all zeros, so the block starts as the identity.

    Args:
        channels: C, at least 2.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f'GcBlock needs at least 2 channels, got {channels}')
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
        self.channel_add_conv = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=1),
            nn.LayerNorm([channels // 2, 1, 1]),
            nn.ReLU(),
            nn.Conv2d(channels // 2, channels, kernel_size=1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming fan_in for ``conv_mask``, zeros for the last channel-add conv."""
        nn.init.kaiming_normal_(self.conv_mask.weight, mode='fan_in', nonlinearity='relu')
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add_conv[-1].weight)
        nn.init.zeros_(self.channel_add_conv[-1].bias)

    def context(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C), the attention-pooled context.

        The 1x1 convs of the block run as matrix products on their own weights (same
        parameters and values; a convolution call per 1x1 map costs more than the maths
        on the small maps of a toy FPN, see :meth:`transform`).
        """
        n, c, h, w = x.shape
        flat = x.reshape(n, c, h * w)
        logits = torch.matmul(self.conv_mask.weight.reshape(1, c), flat)  # (N, 1, HW)
        weights = torch.softmax(logits + self.conv_mask.bias, dim=2)
        return torch.bmm(flat, weights.transpose(1, 2)).reshape(n, c)

    def transform(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, 1, 1), the term the block adds to every position.

        ``channel_add_conv`` applied to the (N, C, 1, 1) context, computed as
        ``linear -> layer_norm -> relu -> linear`` on (N, C) with the convs' and the
        LayerNorm's own parameters (``LayerNorm([C/2, 1, 1])`` normalises the same C/2
        values), so checkpoints and the official module layout are unchanged.
        """
        conv1, norm, _, conv2 = self.channel_add_conv
        n, c = x.shape[:2]
        y = F.linear(self.context(x), conv1.weight.reshape(conv1.out_channels, c), conv1.bias)
        half = conv1.out_channels
        y = F.layer_norm(y, (half,), norm.weight.reshape(half), norm.bias.reshape(half),
                         norm.eps)
        y = F.linear(F.relu(y), conv2.weight.reshape(c, half), conv2.bias)
        return y.reshape(n, c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return x + self.transform(x)


def fgd_global_loss(preds_S: Tensor, preds_T: Tensor, gc_S: nn.Module,
                    gc_T: nn.Module) -> Tensor:
    """Global relation loss of FGD.

    Args:
        preds_S: student map, (N, C, H, W).
        preds_T: teacher map, (N, C, H, W); detached (``gc_T``'s parameters still train,
            as in the official code).
        gc_S: the student's :class:`GcBlock`.
        gc_T: the teacher's :class:`GcBlock`.

    Returns:
        ``sum((gc_S(F_S) - gc_T(F_T))^2) / N``, a scalar.
    """
    return (gc_S(preds_S) - gc_T(preds_T.detach())).pow(2).sum() / preds_S.shape[0]


def fgd_focal_and_global_losses(preds_S: Tensor, preds_T: Tensor, mask_fg: Tensor,
                                mask_bg: Tensor, spatial_T: Tensor, channel_T: Tensor,
                                gc_S: GcBlock, gc_T: GcBlock) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`fgd_focal_loss` and :func:`fgd_global_loss` from one squared difference.

    The same values with fewer full-size passes (what the per-step cost is made of on small
    maps). With ``d = F_S - F_T`` and the GcBlocks' broadcast terms ``a(F)`` (N, C, 1, 1),
    ``gc_S(F_S) - gc_T(F_T) = d + e`` where ``e = a_S(F_S) - a_T(F_T)``, so
    ``sum((d + e)^2) = sum(d^2) + 2 sum_nc(e * sum_hw d) + H*W * sum(e^2)``; the focal
    terms reduce ``d^2`` over channels with the teacher's channel attention in one bmm.

    Args:
        preds_S, preds_T, mask_fg, mask_bg, spatial_T, channel_T: as :func:`fgd_focal_loss`.
        gc_S, gc_T: as :func:`fgd_global_loss`.

    Returns:
        ``(L_fg, L_bg, L_rela)``.
    """
    n, c, h, w = preds_S.shape
    preds_T = preds_T.detach()
    d = (preds_S - preds_T).reshape(n, c, h * w)
    d2 = d * d
    per_cell = torch.bmm(channel_T.detach()[:, None, :], d2).reshape(n, h, w) \
        * spatial_T.detach()
    e = (gc_S.transform(preds_S) - gc_T.transform(preds_T)).reshape(n, c)
    rela = d2.sum() + 2 * (e * d.sum(dim=2)).sum() + (h * w) * e.pow(2).sum()
    return (per_cell * mask_fg).sum() / n, (per_cell * mask_bg).sum() / n, rela / n


def _segment_softmax(x: Tensor, level: Tensor, onehot: Tensor) -> Tensor:
    """Softmax of (N, P) ``x`` within each segment ``level == l`` of its last dimension
    (``onehot``: (P, L) cell-to-level indicator)."""
    top = x.new_full((x.shape[0], onehot.shape[1]), float('-inf')).scatter_reduce_(
        1, level.expand_as(x), x.detach(), 'amax')  # a constant per segment: no gradient
    e = torch.exp(x - top[:, level])
    return e / (e @ onehot)[:, level]


def _pick_level(x: Tensor, level: Tensor) -> Tensor:
    """(N, L, P) values of every level at every cell -> (N, P), each cell's own level's."""
    return x.gather(1, level.expand(x.shape[0], 1, -1)).squeeze(1)


def _stacked_transform(blocks: Sequence[GcBlock], x: Tensor, level: Tensor,
                       onehot: Tensor) -> Tensor:
    """:meth:`GcBlock.transform` of every level at once: (N, C, P) cells of L levels, one
    block per level -> (N, C, L), from the blocks' own parameters stacked per step."""
    n, c, _ = x.shape
    w_mask = torch.stack([b.conv_mask.weight.reshape(c) for b in blocks])  # (L, C)
    b_mask = torch.cat([b.conv_mask.bias for b in blocks])  # (L,)
    logits = _pick_level(torch.matmul(w_mask, x), level) + b_mask[level]  # (N, P)
    weights = _segment_softmax(logits, level, onehot)
    context = torch.bmm(x, weights[:, :, None] * onehot)  # (N, C, L)
    convs1 = [b.channel_add_conv[0] for b in blocks]
    norms = [b.channel_add_conv[1] for b in blocks]
    convs2 = [b.channel_add_conv[3] for b in blocks]
    half = convs1[0].out_channels
    w1 = torch.stack([m.weight.reshape(half, c) for m in convs1])  # (L, C/2, C)
    y = torch.einsum('ncl,lhc->nlh', context, w1) + torch.stack([m.bias for m in convs1])
    y = F.layer_norm(y, (half,), eps=norms[0].eps) * \
        torch.stack([m.weight.reshape(half) for m in norms]) + \
        torch.stack([m.bias.reshape(half) for m in norms])
    w2 = torch.stack([m.weight.reshape(c, half) for m in convs2])  # (L, C, C/2)
    out = torch.einsum('nlh,lch->ncl', F.relu(y), w2)
    return out + torch.stack([m.bias for m in convs2]).t()


@functools.lru_cache(maxsize=16)
def _cell_levels(hw: tuple[tuple[int, int], ...], device: str, dtype: torch.dtype,
                 ) -> tuple[Tensor, Tensor]:
    """Level of each cell of the grids ``hw`` side by side, (P,), and the (P, L)
    cell-to-level indicator (segment sums as one matrix product)."""
    level = _grid_cells(hw, device)[0]
    with torch.inference_mode(False):
        return level, F.one_hot(level, len(hw)).to(dtype)


def fgd_loss_levels(losses: Sequence[FGDLoss], preds_S: Sequence[Tensor],
                    preds_T: Sequence[Tensor], mask_fg: Tensor, mask_bg: Tensor) -> Tensor:
    """The sum over levels of :class:`FGDLoss` (one instance per level), computed once for
    all levels: the levels' (N, C, H_l*W_l) cells side by side, per-level softmaxes and
    means as segment operations, the per-level GcBlocks' parameters stacked. Same value
    and gradients as summing ``losses[l](preds_S[l], preds_T[l], ...)`` (up to float
    summation order; tested), with the operations of one level instead of L.

    Args:
        losses: one :class:`FGDLoss` per level, equal settings.
        preds_S, preds_T: per level (N, C, H_l, W_l), the same C on every level.
        mask_fg, mask_bg: (N, sum H_l*W_l), the levels' masks side by side
            (:func:`_fgd_masks_cells`).
    """
    first = losses[0]
    n, c = preds_S[0].shape[:2]
    hw = tuple((int(p.shape[2]), int(p.shape[3])) for p in preds_S)
    level, onehot = _cell_levels(hw, str(preds_S[0].device), preds_S[0].dtype)
    cells = preds_S[0].new_tensor([h * w for h, w in hw])  # (L,) H*W of each level
    s = torch.cat([p.reshape(n, c, -1) for p in preds_S], dim=2)  # (N, C, P)
    t = torch.cat([p.detach().reshape(n, c, -1) for p in preds_T], dim=2)

    def attention(x: Tensor) -> tuple[Tensor, Tensor]:
        value = x.abs()
        spatial = _segment_softmax(value.mean(dim=1) / first.temp, level, onehot) * \
            cells[level]
        mean = torch.matmul(value, onehot) / cells  # (N, C, L) per-level means
        return spatial, c * torch.softmax(mean / first.temp, dim=1)

    spatial_S, channel_S = attention(s)
    with torch.no_grad():
        spatial_T, channel_T = attention(t)
    d = s - t
    d2 = d * d
    # sum_c d^2 * A_ch^T of the cell's level, then A_sp^T
    per_cell = _pick_level(torch.bmm(channel_T.transpose(1, 2), d2), level) * spatial_T
    fg = (per_cell * mask_fg.to(s.dtype)).sum() / n
    bg = (per_cell * mask_bg.to(s.dtype)).sum() / n
    at = (channel_S - channel_T).abs().sum() / n + (spatial_S - spatial_T).abs().sum() / n
    # sum((gc_S(F_S) - gc_T(F_T))^2) per level, as fgd_focal_and_global_losses
    e = _stacked_transform([m.gc_S for m in losses], s, level, onehot) - \
        _stacked_transform([m.gc_T for m in losses], t, level, onehot)  # (N, C, L)
    rela = (d2.sum() + 2 * (e * torch.matmul(d, onehot)).sum() + (e.pow(2) * cells).sum()) / n
    return (first.alpha_fgd * fg + first.beta_fgd * bg + first.gamma_fgd * at
            + first.lambda_fgd * rela)


@MODELS.register_module()
class FGDLoss(nn.Module):
    """FGD at one feature level; logged as ``loss_fgd``.

    Used through ``FeatureMimic``, which builds one instance per level (``per_level``) with
    the teacher's ``channels`` and passes the batch's ``DetDataSample`` list
    (``uses_data_samples``); the official ``align`` 1x1 conv is FeatureMimic's projector.

    ``box_scale`` picks the image shape that boxes are divided by before being multiplied by
    the grid size. The feature grid spans the padded batch input, so ``'batch_input_shape'``
    (the default, as MMRazor PR #463) puts boxes where they are. ``'img_shape'`` (the official
    code) divides by the resized, unpadded shape, stretching boxes over the padding: with
    padding they drift right/down and grow by up to the pad ratio. Without padding both agree.

    Args:
        channels: C of the (aligned) student and teacher maps.
        temp: attention temperature ``T``.
        alpha_fgd: weight of the foreground loss.
        beta_fgd: weight of the background loss.
        gamma_fgd: weight of the attention loss.
        lambda_fgd: weight of the global relation loss.
        box_scale: ``'batch_input_shape'`` or ``'img_shape'`` (see above).
    """

    loss_name = 'fgd'
    per_level = True
    uses_data_samples = True

    def __init__(self, channels: int, temp: float = 0.5, alpha_fgd: float = 1e-3,
                 beta_fgd: float = 5e-4, gamma_fgd: float = 1e-3, lambda_fgd: float = 5e-6,
                 box_scale: str = 'batch_input_shape') -> None:
        super().__init__()
        self.box_scale = check_choice('FGDLoss', 'box_scale', box_scale, BOX_SCALES)
        self.channels = channels
        self.temp = check_positive('FGDLoss', 'temp', temp, 'the attention temperature')
        self.alpha_fgd = check_weight('FGDLoss', 'alpha_fgd', alpha_fgd)
        self.beta_fgd = check_weight('FGDLoss', 'beta_fgd', beta_fgd)
        self.gamma_fgd = check_weight('FGDLoss', 'gamma_fgd', gamma_fgd)
        self.lambda_fgd = check_weight('FGDLoss', 'lambda_fgd', lambda_fgd)
        self.gc_S = GcBlock(channels)
        self.gc_T = GcBlock(channels)

    def _boxes(self, data_samples: Sequence[Any], device: torch.device,
               ) -> tuple[list[Tensor], list[Sequence[float]]]:
        boxes, scales = [], []
        for ds in data_samples:
            if self.box_scale not in ds.metainfo:
                raise KeyError(f'FGDLoss: data sample has no {self.box_scale!r} in its metainfo '
                               f'(keys: {sorted(ds.metainfo)})')
            bboxes = ds.gt_instances.bboxes
            boxes.append(getattr(bboxes, 'tensor', bboxes).to(device))  # mmdet BaseBoxes
            scales.append(ds.metainfo[self.box_scale][:2])
        return boxes, scales

    def masks(self, data_samples: Sequence[Any], size: Sequence[int],
              device: torch.device) -> tuple[Tensor, Tensor]:
        """Foreground/background masks (N, H, W) of a batch of ``DetDataSample``."""
        return fgd_masks(*self._boxes(data_samples, device), size)

    def prepare_levels(self, data_samples: Sequence[Any] | None, sizes: Sequence[Sequence[int]],
                       device: torch.device) -> list[tuple[Tensor, Tensor]] | None:
        """The masks of every level in one pass (:func:`fgd_masks_levels`), for
        ``FeatureMimic`` to hand each level's loss as ``prepared`` (what :meth:`masks`
        gives level by level)."""
        if data_samples is None:
            return None
        return fgd_masks_levels(*self._boxes(data_samples, device), sizes)

    SETTINGS = ('temp', 'alpha_fgd', 'beta_fgd', 'gamma_fgd', 'lambda_fgd', 'box_scale')

    @classmethod
    def forward_levels(cls, losses: Sequence[FGDLoss], preds_S: Sequence[Tensor],
                       preds_T: Sequence[Tensor], data_samples: Sequence[Any] | None,
                       ) -> Tensor | None:
        """The sum of the per-level losses in one pass (:func:`fgd_loss_levels`), for
        ``FeatureMimic``; None (compute level by level) unless there are at least two
        levels, one data sample per image, and every level is non-empty with the same
        channels and settings."""
        if data_samples is None or len(losses) != len(preds_S) or len(losses) < 2:
            return None
        shapes = [(s.shape, t.shape) for s, t in zip(preds_S, preds_T)]
        first = losses[0]
        if not all(s == t and len(s) == 4 and s[:2] == preds_S[0].shape[:2]
                   and s[1] == m.channels and s.numel() > 0
                   for (s, t), m in zip(shapes, losses)):
            return None
        if len(data_samples) != preds_S[0].shape[0] or any(
                getattr(m, k) != getattr(first, k) for m in losses for k in cls.SETTINGS) or \
                len({b.channel_add_conv[1].eps for m in losses for b in (m.gc_S, m.gc_T)}) != 1:
            return None
        fg, bg = _fgd_masks_cells(*first._boxes(data_samples, preds_S[0].device),
                                  [s.shape[2:] for s in preds_S])
        return fgd_loss_levels(losses, preds_S, preds_T, fg, bg)

    def forward(self, preds_S: Tensor, preds_T: Tensor, data_samples: Sequence[Any] | None,
                prepared: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """(N, C, H, W) x 2 and N data samples -> scalar; ``prepared``: this level's
        (fg, bg) masks from :meth:`prepare_levels`, else they are made here."""
        if preds_S.shape != preds_T.shape:
            raise ValueError(f'FGDLoss: student {tuple(preds_S.shape)} and teacher '
                             f'{tuple(preds_T.shape)} differ; add a projector or resize')
        if preds_S.dim() != 4 or preds_S.shape[1] != self.channels:
            raise ValueError(f'FGDLoss({self.channels}) expects (N, {self.channels}, H, W), '
                             f'got {tuple(preds_S.shape)}')
        if preds_S.numel() == 0:  # keep the graph through the GcBlocks too
            return preds_S.sum() * 0 + sum(p.sum() for p in self.parameters()) * 0
        if data_samples is None or len(data_samples) != preds_S.shape[0]:
            raise ValueError('FGDLoss needs one DetDataSample per image (uses_data_samples)')
        preds_T = preds_T.detach()
        spatial_S, channel_S = fgd_attention(preds_S, self.temp)
        spatial_T, channel_T = fgd_attention(preds_T, self.temp)
        if prepared is None:
            prepared = self.masks(data_samples, preds_S.shape[2:], preds_S.device)
        mask_fg, mask_bg = prepared
        mask_fg, mask_bg = mask_fg.to(preds_S.dtype), mask_bg.to(preds_S.dtype)
        fg, bg, rela = fgd_focal_and_global_losses(preds_S, preds_T, mask_fg, mask_bg,
                                                   spatial_T, channel_T, self.gc_S, self.gc_T)
        at = fgd_attention_loss(spatial_S, channel_S, spatial_T, channel_T)
        return (self.alpha_fgd * fg + self.beta_fgd * bg + self.gamma_fgd * at
                + self.lambda_fgd * rela)
