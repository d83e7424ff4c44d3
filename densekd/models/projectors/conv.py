"""Convolutional adapters from student to teacher channels (FitNet's regressor ``r``)."""
from __future__ import annotations

from torch import Tensor, nn

from densekd.registry import MODELS

__all__ = ['ConvProjector']


@MODELS.register_module()
class ConvProjector(nn.Module):
    """A k x k convolution (1x1 by default) from ``in_channels`` to ``out_channels``.

    Components fill ``in_channels`` and ``out_channels`` from the tapped shapes measured at
    build time, so a config only says ``projector=dict(type='ConvProjector')``.

    Args:
        in_channels: student channels.
        out_channels: teacher channels.
        kernel_size: odd kernel size; padding keeps the spatial size.
        norm: append a BatchNorm2d.
        act: append a ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 norm: bool = False, act: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size,
                                             padding=kernel_size // 2, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(out_channels))
        if act:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, Cs, H, W) -> (N, Ct, H, W)."""
        return self.layers(x)
