"""CAKD's multi-view robust training (Liu et al., ACCV 2022, Sec. 3.3), reconstructed.

A multi-view generator perturbs the projected student features (random spatial masking or a
random crop resized back, each image with probability 0.5); a discriminator (global average
pooling -> 3-layer MLP -> sigmoid) learns to tell the teacher's features from them, and the
student learns to fool it. The discriminator has its own optimiser: its loss is returned under
the key ``loss_discriminator`` and stepped by the ``'discriminator'`` wrapper of an
``OptimWrapperDict`` (see ``DistillationModel.update_from_losses``,
:class:`DiscriminatorOptimWrapperConstructor` and, under DDP,
:class:`DistillDistributedDataParallel`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from densekd.registry import MODELS

__all__ = ['MultiViewGenerator', 'FeatureDiscriminator']


@MODELS.register_module()
class MultiViewGenerator(nn.Module):
    """Random views of feature maps, (B, C, H, W) -> (B, C, H, W); identity in eval mode.

    Args:
        prob: probability that an image's map is replaced by a view.
        views: view kinds to draw from uniformly: ``'mask'`` (zero a random ``mask_ratio``
            of the pixels) and ``'crop'`` (a random crop of ``crop_scale`` of each side,
            resized back bilinearly).
        mask_ratio: fraction of pixels zeroed by ``'mask'``.
        crop_scale: (min, max) side fraction of ``'crop'``.
    """

    def __init__(self, prob: float = 0.5, views: Sequence[str] = ('mask', 'crop'),
                 mask_ratio: float = 0.3, crop_scale: Sequence[float] = (0.5, 1.0)) -> None:
        super().__init__()
        bad = set(views) - {'mask', 'crop'}
        if bad or not views:
            raise ValueError(f"views must be a non-empty subset of ('mask', 'crop'), got {views}")
        self.prob = prob
        self.views = tuple(views)
        self.mask_ratio = mask_ratio
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))

    def _crop(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        s = float(torch.empty(()).uniform_(*self.crop_scale))
        ch, cw = max(1, round(h * s)), max(1, round(w * s))
        y0 = int(torch.randint(0, h - ch + 1, ()))
        x0 = int(torch.randint(0, w - cw + 1, ()))
        crop = x[None, :, y0:y0 + ch, x0:x0 + cw]
        return F.interpolate(crop, size=(h, w), mode='bilinear', align_corners=False)[0]

    def forward(self, x: Tensor) -> Tensor:
        """Each image independently: a view with probability ``prob``, else unchanged."""
        if not self.training or self.prob <= 0:
            return x
        out = []
        for xi in x:
            if float(torch.rand(())) >= self.prob:
                out.append(xi)
                continue
            kind = self.views[int(torch.randint(len(self.views), ()))]
            if kind == 'mask':
                keep = (torch.rand(1, *xi.shape[-2:], device=xi.device) >= self.mask_ratio)
                out.append(xi * keep.to(xi.dtype))
            else:
                out.append(self._crop(xi))
        return torch.stack(out) if out else x


@MODELS.register_module()
class FeatureDiscriminator(nn.Module):
    """GAP -> Linear-ReLU-Linear-ReLU-Linear -> sigmoid: (B, C, H, W) or (B, C) -> (B,).

    Args:
        in_channels: feature channels.
        hidden_channels: width of the two hidden layers.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hidden_channels), nn.ReLU(),
            nn.Linear(hidden_channels, hidden_channels), nn.ReLU(),
            nn.Linear(hidden_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Probability that each feature is the teacher's."""
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return torch.sigmoid(self.mlp(x)).squeeze(-1)

    def frozen(self, x: Tensor) -> Tensor:
        """:meth:`forward` with detached copies of the parameters.

        For the student's (generator) loss: gradients reach ``x`` but never this module (so
        one backward of both loss sets gives each optimiser its own gradients), and the
        copies survive the discriminator's optimiser step where it runs before the student's
        backward (AMP wrappers: one backward each; an in-place step on parameters saved for
        backward would fail).
        """
        params = {n: p.detach().clone() for n, p in self.named_parameters()}
        return functional_call(self, params, (x,))
