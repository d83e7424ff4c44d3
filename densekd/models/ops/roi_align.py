"""RoIAlign as two small matrix products, for the few RoIs and small maps of distillation.

Average RoIAlign (``sampling_ratio`` s > 0) samples each output bin on an s x s grid whose
x coordinates depend only on the bin's column and y coordinates only on its row, and
bilinear interpolation is a product of a weight along y and one along x. So for one RoI

    out[c, i, j] = sum_{y, x} Wy[i, y] * F[c, y, x] * Wx[j, x]

with ``Wy`` (P, H) and ``Wx`` (P, W) holding, per output row/column, the bilinear weights
of its s samples divided by s (torchvision's / mmcv's rules: a sample below -1 or beyond
the map contributes nothing, one in [-1, 0] is clamped to 0, one past the last row/column
reads that row/column). ``out = Wy @ F @ Wx^T`` is exact (same values up to float
rounding, tested against torchvision and mmcv) and its backward is two matrix products,
where the sampling kernels of mmcv and torchvision scatter every sample on one CPU thread.

On a CPU the products win while the map is small (cost ~ R*P*H*W*C against the kernels'
~ R*P^2*s^2*C): a 32x32 map with 20 RoIs of 10x10 takes 4.7 ms forward + backward against
8.3 ms (torchvision) and 9.2 ms (mmcv), a 100x100 map 15.8 ms against 10.3 ms (2 threads,
``benchmarks/README.md``). :class:`SeparableRoIAlign` therefore uses the products up to
``max_area`` map cells and mmcv's ``RoIAlign`` above, and always on CUDA.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from mmcv.ops import RoIAlign
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

__all__ = ['roi_align_weights', 'separable_roi_align', 'separable_roi_align_levels',
           'SeparableRoIAlign']


def _axis_weights(start: Tensor, bin_size: Tensor, out_size: int, sampling_ratio: int,
                  size: int | Tensor, width: int | None = None) -> Tensor:
    """(R, P, width) averaged bilinear weights along one axis (see the module docstring),
    on a map of ``size`` cells (an int, or (R,) per RoI, then ``width`` >= every size:
    the columns past a RoI's own size stay zero)."""
    r = start.shape[0]
    dtype = start.dtype
    if isinstance(size, Tensor):
        if width is None:
            raise ValueError('roi_align_weights: per-RoI map sizes need max_size=(H, W)')
        size = size.to(dtype)[:, None, None]
        limit = size - 1
        width = int(width)
    else:
        width, limit = size, size - 1
    sub = (torch.arange(sampling_ratio, dtype=dtype, device=start.device) + 0.5) / sampling_ratio
    bins = torch.arange(out_size, dtype=dtype, device=start.device)
    coord = start[:, None, None] + bin_size[:, None, None] * (bins[None, :, None]
                                                              + sub[None, None, :])
    inside = ((coord >= -1.0) & (coord <= size)).to(dtype) / sampling_ratio
    coord = coord.clamp(min=0)
    low = coord.floor()
    last = low >= limit
    low = torch.where(last, limit, low)
    frac = torch.where(last, 0.0, coord - low)  # past the end: the last row/column
    high = torch.minimum(low + 1, limit) if isinstance(limit, Tensor) else \
        (low + 1).clamp(max=limit)
    weights = coord.new_zeros(r, out_size, width)
    weights.scatter_add_(2, low.long(), (1 - frac) * inside)
    weights.scatter_add_(2, high.long(), frac * inside)
    return weights


def roi_align_weights(rois: Tensor, out_size: int, spatial_scale: float | Tensor,
                      sampling_ratio: int, aligned: bool, height: int | Tensor,
                      width: int | Tensor, max_size: tuple[int, int] | None = None,
                      ) -> tuple[Tensor, Tensor]:
    """Row and column weights of average RoIAlign on an (height, width) map.

    Args:
        rois: (R, 5) ``(batch_index, x1, y1, x2, y2)`` in input pixels.
        out_size: P, the square output size.
        spatial_scale: map cells per input pixel (1 / stride), or (R,) one per RoI.
        sampling_ratio: s > 0 samples per bin and axis.
        aligned: shift by half a cell (``aligned=True`` of mmcv / torchvision).
        height, width: the map's size, or (R,) each, one map per RoI (several levels at
            once); then ``max_size`` (H, W) bounds them and sizes the outputs.

    Returns:
        ``Wy`` (R, P, height) and ``Wx`` (R, P, width) (``max_size`` wide with per-RoI
        sizes).
    """
    if sampling_ratio <= 0:
        raise ValueError('roi_align_weights needs sampling_ratio > 0 (adaptive sampling '
                         'varies per RoI); use mmcv.ops.RoIAlign')
    offset = 0.5 if aligned else 0.0
    dtype = torch.promote_types(rois.dtype, torch.float32)  # float32, or float64 RoIs
    # no gradient into the boxes, as mmcv's and torchvision's kernels
    if isinstance(spatial_scale, Tensor):
        spatial_scale = spatial_scale.to(dtype)[:, None]
    boxes = rois[:, 1:].detach().to(dtype) * spatial_scale - offset
    x1, y1, x2, y2 = boxes.unbind(1)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # legacy mode: RoIs at least one cell
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    max_h, max_w = max_size if max_size is not None else (None, None)
    return (_axis_weights(y1, roi_h / out_size, out_size, sampling_ratio, height, max_h),
            _axis_weights(x1, roi_w / out_size, out_size, sampling_ratio, width, max_w))


def separable_roi_align(feat: Tensor, batch_index: Tensor, wy: Tensor, wx: Tensor) -> Tensor:
    """``Wy @ F[b] @ Wx^T`` for every RoI: (R, C, P, P).

    Args:
        feat: (N, C, H, W) map.
        batch_index: (R,) image of each RoI.
        wy, wx: from :func:`roi_align_weights` for this map's size.
    """
    n, c, h, w = feat.shape
    r, p = wy.shape[:2]
    wy, wx = wy.to(feat.dtype), wx.to(feat.dtype)
    if r == 0:
        return feat.new_zeros(0, c, p, p) + feat.sum() * 0
    out = feat.new_zeros(r, c, p, p)
    for img in batch_index.unique().tolist():
        idx = (batch_index == img).nonzero().squeeze(1)
        rows = wy[idx].reshape(-1, h) @ feat[img].transpose(0, 1).reshape(h, c * w)
        pooled = torch.matmul(rows.reshape(len(idx), p, c, w), wx[idx].transpose(1, 2)[:, None])
        out = out.index_copy(0, idx, pooled.permute(0, 2, 1, 3))
    return out


def _pool_image(feat: Tensor, wy: Tensor, wx: Tensor, grad: bool) -> Tensor:
    """``Wy @ F @ Wx^T`` for r RoIs of one (C, H, W) map: (r, C, P, P) (a view)."""
    c, h, w = feat.shape
    r, p = wy.shape[:2]
    rows = wy.reshape(-1, h) @ feat.transpose(0, 1).reshape(h, c * w)  # (r*P, C*W)
    if grad:  # its backward is the faster one
        pooled = torch.matmul(rows.reshape(r, p, c, w), wx.transpose(1, 2)[:, None])
    else:  # one (P*C, W) x (W, P) product per RoI: the faster forward
        pooled = torch.bmm(rows.reshape(r, p * c, w), wx.transpose(1, 2)).reshape(r, p, c, p)
    return pooled.permute(0, 2, 1, 3)


def separable_roi_align_levels(feats: Sequence[Tensor], others: Sequence[Tensor],
                               rois: Tensor, levels: Tensor, spatial_scales: Sequence[float],
                               out_size: int, sampling_ratio: int, aligned: bool,
                               ) -> tuple[Tensor, Tensor]:
    """Average RoIAlign of each RoI on its level of two pyramids of equal map sizes, the
    first with gradients (a student's), the second without (a teacher's).

    The values of :func:`separable_roi_align` level by level, with less work around the
    products: the interpolation weights of every RoI are made in one pass (per-RoI scale
    and map size) and the RoIs are grouped by (level, image), so every group is a slice.

    Args:
        feats, others: per level (N, C, H_l, W_l) and (N, C', H_l, W_l).
        rois: (R, 5) ``(batch_index, x1, y1, x2, y2)``.
        levels: (R,) level of each RoI.
        spatial_scales: per level, 1 / stride.
        out_size, sampling_ratio, aligned: as :func:`roi_align_weights`.

    Returns:
        (R, C, P, P) and (R, C', P, P) in the order of ``rois``. A level without RoIs
        stays in the graph (``sum() * 0``), as mmdet's extractors.
    """
    n, num = feats[0].shape[0], len(feats)
    p, device = out_size, rois.device
    batch = rois[:, 0].long()
    order = (levels * n + batch).argsort(stable=True)
    counts = torch.bincount(levels * n + batch, minlength=num * n).tolist()
    lv = levels[order]
    sizes = torch.tensor([f.shape[-2:] for f in feats], device=device)[lv]  # (R, 2)
    max_size = (max(f.shape[-2] for f in feats), max(f.shape[-1] for f in feats))
    wy, wx = roi_align_weights(rois[order], p, rois.new_tensor(spatial_scales)[lv],
                               sampling_ratio, aligned, sizes[:, 0], sizes[:, 1], max_size)
    s_parts, t_parts = [], []
    unused = feats[0].new_zeros(())
    start = 0
    for lvl, (feat, other) in enumerate(zip(feats, others)):
        h, w = feat.shape[-2:]
        if not sum(counts[lvl * n:(lvl + 1) * n]):
            unused = unused + feat.sum() * 0
            continue
        for img in range(n):
            c = counts[lvl * n + img]
            if c:
                wy_g, wx_g = wy[start:start + c, :, :h], wx[start:start + c, :, :w]
                s_parts.append(_pool_image(feat[img], wy_g.to(feat.dtype),
                                           wx_g.to(feat.dtype), True))
                with torch.no_grad():
                    t_parts.append(_pool_image(other[img], wy_g.to(other.dtype),
                                               wx_g.to(other.dtype), False))
                start += c
    if not s_parts:
        return (feats[0].new_zeros(0, feats[0].shape[1], p, p) + unused,
                others[0].new_zeros(0, others[0].shape[1], p, p))
    inverse = order.argsort()
    return torch.cat(s_parts)[inverse] + unused, torch.cat(t_parts)[inverse]


class SeparableRoIAlign(nn.Module):
    """Average RoIAlign with mmcv's ``RoIAlign`` signature (usable as the ``roi_layer`` type
    of mmdet's RoI extractors when given as the class itself, ``type=SeparableRoIAlign``:
    mmdet looks string types up in ``mmcv.ops``): :func:`separable_roi_align` on CPU maps of at most
    ``max_area`` cells, mmcv's kernel otherwise (CUDA, large maps, ``pool_mode='max'``,
    adaptive sampling).

    Args:
        output_size: P (int or a square pair).
        spatial_scale: 1 / stride.
        sampling_ratio: samples per bin and axis.
        pool_mode: ``'avg'`` (``'max'`` always goes to mmcv).
        aligned: half-cell shift, as mmcv.
        max_area: largest H*W computed by the products (4096: up to 64x64; crossover
            measured between 32x32 and 100x100 for 10x10 outputs).
    """

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                 sampling_ratio: int = 0, pool_mode: str = 'avg', aligned: bool = True,
                 use_torchvision: bool = False, max_area: int = 4096) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.kernel = RoIAlign(self.output_size, spatial_scale, sampling_ratio, pool_mode,
                               aligned, use_torchvision)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned
        self.max_area = max_area

    def uses_products(self, feat: Tensor) -> bool:
        """Whether ``feat`` goes through :func:`separable_roi_align`."""
        return (feat.device.type == 'cpu' and self.output_size[0] == self.output_size[1]
                and self.pool_mode == 'avg' and self.sampling_ratio > 0
                and feat.shape[-2] * feat.shape[-1] <= self.max_area)

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """(N, C, H, W) map, (R, 5) RoIs -> (R, C, P, P)."""
        if not self.uses_products(feat):
            return self.kernel(feat, rois)
        wy, wx = roi_align_weights(rois, self.output_size[0], self.spatial_scale,
                                   self.sampling_ratio, self.aligned, feat.shape[-2],
                                   feat.shape[-1])
        return separable_roi_align(feat, rois[:, 0].long(), wy, wx)

    def forward_pair(self, feat: Tensor, other: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
        """The same RoIs on two maps of one level (a student's, with gradients, and a
        teacher's, pooled without): the interpolation weights are made once when both go
        through the products."""
        if not (self.uses_products(feat) and feat.shape[-2:] == other.shape[-2:]):
            with torch.no_grad():
                other_out = self(other, rois)
            return self(feat, rois), other_out
        wy, wx = roi_align_weights(rois, self.output_size[0], self.spatial_scale,
                                   self.sampling_ratio, self.aligned, feat.shape[-2],
                                   feat.shape[-1])
        batch = rois[:, 0].long()
        with torch.no_grad():
            other_out = separable_roi_align(other, batch, wy, wx)
        return separable_roi_align(feat, batch, wy, wx), other_out

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, '
                f'max_area={self.max_area}')
