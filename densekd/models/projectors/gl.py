"""CAKD's group-wise linear (GL) projector (Liu et al., ACCV 2022, Sec. 3.2).

Each student pixel is mapped to the teacher's token space by a linear map ``C_S -> C_T``;
to keep the parameter count small, pixels of one spatial group share the map. Reconstructed
(no official code): the paper's groups are read as contiguous ``gh x gw`` blocks
(``sharing='block'``, one map per block, so the grid must be fixed); third-party versions share
one map per phase of a ``4 x 4`` grid, ``x[:, :, i::4, j::4]`` (``sharing='phase'``, default
here because detection inputs vary in size and phases work at any size). Trained with
``MSE(GL(h_S), h_T)`` (:func:`densekd.models.losses.gl_loss`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

__all__ = ['GLProjector']


@MODELS.register_module()
class GLProjector(nn.Module):
    """Pixel-wise linear maps shared within spatial groups; (B, C_S, H, W) -> (B, C_T, H, W).

    Args:
        in_channels: student channels.
        out_channels: teacher channels.
        group_size: (gh, gw).
        sharing: ``'phase'`` -- pixel (y, x) uses map ``(y % gh, x % gw)``; ``'block'`` --
            pixel (y, x) uses map ``(y // gh, x // gw)``, which needs ``grid``.
        grid: (H, W) of the maps, required by ``'block'`` (components pass the dry-run size).
        dropout: dropout on the input pixels (third-party versions use it; paper: none).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 group_size: Sequence[int] = (4, 4), sharing: str = 'phase',
                 grid: Sequence[int] | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        if sharing not in ('phase', 'block'):
            raise ValueError(f"sharing must be 'phase' or 'block', got {sharing!r}")
        self.group_size = (int(group_size[0]), int(group_size[1]))
        self.sharing = sharing
        gh, gw = self.group_size
        if sharing == 'phase':
            n_h, n_w = gh, gw
        else:
            if grid is None:
                raise ValueError("GLProjector(sharing='block') needs grid=(H, W)")
            n_h, n_w = math.ceil(grid[0] / gh), math.ceil(grid[1] / gw)
        self.weight = nn.Parameter(torch.empty(n_h, n_w, out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(n_h, n_w, out_channels))
        bound = 1.0 / math.sqrt(in_channels)  # nn.Linear's default init
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_S, H, W) -> (B, C_T, H, W)."""
        b, c, h, w = x.shape
        gh, gw = self.group_size
        x = self.dropout(x)
        x = F.pad(x, (0, (gw - w % gw) % gw, 0, (gh - h % gh) % gh))
        nh, nw = x.shape[2] // gh, x.shape[3] // gw
        x = x.view(b, c, nh, gh, nw, gw)
        if self.sharing == 'phase':
            y = torch.einsum('bchiwj,ijoc->bohiwj', x, self.weight)
            y = y + self.bias.permute(2, 0, 1)[None, :, None, :, None, :]
        else:
            if (nh, nw) != tuple(self.weight.shape[:2]):
                raise ValueError(f'GLProjector: a {h}x{w} map has {nh}x{nw} blocks of '
                                 f'{gh}x{gw}, the weights {tuple(self.weight.shape[:2])}; '
                                 "block sharing needs a fixed size (use sharing='phase')")
            y = torch.einsum('bchiwj,hwoc->bohiwj', x, self.weight)
            y = y + self.bias.permute(2, 0, 1)[None, :, :, None, :, None]
        return y.reshape(b, -1, nh * gh, nw * gw)[:, :, :h, :w]
