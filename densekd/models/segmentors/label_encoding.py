"""Noised label encodings for label-assisted segmentation (LAD).

Qiu, Chen, Li, Wan, Xue and Pu, "Make a Strong Teacher with Label Assistance: A Novel
Knowledge Distillation Approach for Semantic Segmentation", ECCV 2024 (arXiv 2407.13254).
The teacher sees the image plus one extra input channel that encodes the ground-truth label
map: every pixel of label value ``k`` gets one scalar code ``c_k``, plus per-pixel Gaussian
noise, times a large scale.

With ``K`` classes there are ``K + 1`` label values: ``0..K-1`` and the ignore index, which
is mapped to its own value ``K`` (the reference maps VOC's ignore to an extra class 21), so
ignored pixels get a code of their own and are never merged with a class.

* Teacher training (:func:`random_code_encoding`): ``c_k ~ N(0, 1)``, drawn anew per image,
  per value and per call, so the network can only use *which pixels share a code*, not the
  code values themselves. ``e = scale * (c_{y(p)} + sigma * n(p))``, ``n ~ N(0, 1)``;
  reference: ``sigma = 0.03``, ``scale = 100``.
* Distillation / assisted evaluation (:func:`fixed_code_encoding`): the deterministic code
  ``c_k = (k - floor((K + 1) / 2)) * step``; the reference's VOC code ``(k - 11) / 10`` for
  its 22 values is the case ``K + 1 = 22``, ``step = 0.1``. Reference: ``sigma = 0.02``.

Random codes and noise are drawn on the device of the label map, all codes of a batch in one
call. The reference draws on the CPU, one code per image and value in a Python loop, and
copies each draw over (``torch.randn(1).cuda()``, ``torch.randn(N, 1, H, W).cuda()``).
Drawing on the device saves those host-to-device copies; the draws have the same
distribution, but a seed does not give the reference's values (on CUDA another generator, on
any device another draw order). The same seed (or generator state) gives the same encoding
on the same device type.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['label_values', 'fixed_codes', 'encode_labels', 'random_code_encoding',
           'fixed_code_encoding', 'label_maps_from_samples']


def label_values(labels: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """Map a label map to code indices ``0..K``: classes keep theirs, ignore becomes ``K``.

    Args:
        labels: integer label map, (N, H, W).
        num_classes: ``K``.
        ignore_index: the label value that marks ignored (and padded) pixels.

    Returns:
        (N, H, W) int64 in ``[0, K]``.

    Raises:
        ValueError: a value that is neither a class nor ``ignore_index``.
    """
    labels = labels.long()
    ignored = labels == ignore_index
    values = torch.where(ignored, torch.full_like(labels, num_classes), labels)
    if values.numel() and (values.min() < 0 or values.max() > num_classes):
        bad = torch.unique(labels[(values < 0) | (values > num_classes)])[:8].tolist()
        raise ValueError(f'label map holds values {bad} that are neither classes 0..'
                         f'{num_classes - 1} nor the ignore index {ignore_index}')
    return values


def fixed_codes(num_values: int, step: float = 0.1) -> Tensor:
    """The deterministic codes ``(k - num_values // 2) * step`` for ``k = 0..num_values-1``."""
    return (torch.arange(num_values, dtype=torch.float32) - num_values // 2) * step


def encode_labels(values: Tensor, codes: Tensor, noise_std: float, scale: float,
                  generator: torch.Generator | None = None) -> Tensor:
    """``scale * (codes[n, values] + noise_std * N(0, 1))``, one channel.

    Args:
        values: code indices, (N, H, W) int64 (see :func:`label_values`).
        codes: one code per value, (V,) shared by all images or (N, V) per image.
        noise_std: standard deviation of the per-pixel noise, before scaling.
        scale: multiplier of the whole channel.
        generator: optional random generator for the noise, on the device of ``values``
            (the noise is drawn there; see the module docstring).

    Returns:
        (N, 1, H, W) float32 encoding.
    """
    n = values.shape[0]
    codes = codes.to(values.device, torch.float32)
    if codes.dim() == 1:
        codes = codes.expand(n, -1)
    enc = codes.gather(1, values.reshape(n, -1)).reshape(values.shape).unsqueeze(1)
    if noise_std:
        enc = enc + noise_std * torch.randn(enc.shape, device=enc.device, generator=generator)
    return scale * enc


def random_code_encoding(values: Tensor, num_values: int, noise_std: float = 0.03,
                         scale: float = 100.0,
                         generator: torch.Generator | None = None) -> Tensor:
    """Teacher-training encoding: a fresh ``N(0, 1)`` code per image and value, plus noise.

    Args:
        values: code indices, (N, H, W), in ``[0, num_values)``.
        num_values: ``K + 1`` (classes and the ignore value).
        noise_std: per-pixel noise before scaling (reference 0.03).
        scale: reference 100.
        generator: optional random generator on the device of ``values`` (codes first,
            then noise; drawn there, not on the CPU as the reference).

    Returns:
        (N, 1, H, W) encoding.
    """
    codes = torch.randn((values.shape[0], num_values), device=values.device,
                        generator=generator)
    return encode_labels(values, codes, noise_std, scale, generator)


def fixed_code_encoding(values: Tensor, num_values: int, step: float = 0.1,
                        noise_std: float = 0.02, scale: float = 100.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """Distillation-time encoding: the deterministic :func:`fixed_codes` plus noise.

    Args:
        values: code indices, (N, H, W), in ``[0, num_values)``.
        num_values: ``K + 1``.
        step: spacing of the codes (reference 0.1).
        noise_std: per-pixel noise before scaling (reference 0.02).
        scale: reference 100.
        generator: optional random generator for the noise.

    Returns:
        (N, 1, H, W) encoding.
    """
    return encode_labels(values, fixed_codes(num_values, step), noise_std, scale, generator)


def label_maps_from_samples(data_samples: Sequence, size: Sequence[int],
                            ignore_index: int = 255) -> tuple[Tensor, list[int]]:
    """The ground-truth maps of the samples that have one, aligned with a batch of ``size``.

    A map already of the batch size (training: mmseg pads images and maps together) is used
    as it is. Otherwise (testing: the map keeps the original resolution while the image was
    resized) it is resized to the sample's ``img_shape`` with nearest neighbours and padded
    with ``ignore_index`` at the bottom and right, where mmseg pads the image.

    Args:
        data_samples: ``SegDataSample``-like objects; those without ``gt_sem_seg`` are skipped.
        size: (H, W) of the batch.
        ignore_index: padding value.

    Returns:
        ``(labels, indices)``: (M, H, W) int64 maps and the batch positions they belong to.
    """
    height, width = int(size[0]), int(size[1])
    maps, indices = [], []
    for i, sample in enumerate(data_samples or []):
        if 'gt_sem_seg' not in sample:
            continue
        gt = sample.gt_sem_seg.data.reshape(-1, *sample.gt_sem_seg.data.shape[-2:])[0].long()
        if tuple(gt.shape) != (height, width):
            img_h, img_w = sample.metainfo.get('img_shape', (height, width))[:2]
            img_h, img_w = min(int(img_h), height), min(int(img_w), width)
            if tuple(gt.shape) != (img_h, img_w):
                gt = F.interpolate(gt[None, None].float(), size=(img_h, img_w),
                                   mode='nearest')[0, 0].long()
            gt = F.pad(gt, (0, width - img_w, 0, height - img_h), value=ignore_index)
        maps.append(gt)
        indices.append(i)
    if not maps:
        return torch.zeros((0, height, width), dtype=torch.long), []
    return torch.stack(maps), indices
