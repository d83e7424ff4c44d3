"""ScaleKD's cross-attention projector (Fan et al., NeurIPS 2024, Sec. 3.1).

Follows the official ``AttentionProjector`` + ``WindowMultiheadPosAttention``
(deep-optimization/ScaleKD, ``mmcls/models/dis_losses/fmdv2.py`` and ``attention.py``):

    x'  = ReLU(BN(Conv3x3(x))) + pos_embed                        (B, C_S, H, W) -> HW tokens
    q0  = ReLU(Conv1x1(query))       query: learnable (HW, C_T) or given (B, HW, C_q)
    a   = Proj(MHA(q=Lin(q0), k=Lin(x'), v=Lin(x')))  logits * head_dim^-0.5 * softmax_scale
    out = LN(a) + FFN(LN(a))                                      (B, HW, C_T)

(mmcv's ``FFN`` adds its input, which is the normalised ``a``.) Departures, all for dense
inputs: the positional embedding and the learnable queries are resized bilinearly when a map
differs from the size they were built for (the official code fixes 224 px inputs); windows may
be non-square and are merged back to raster order (the official ``view`` after windowed
attention keeps tokens in window order, which only matters for ``num_windows != (1, 1)``,
never used in its configs).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

__all__ = ['CrossAttentionProjector', 'window_tokens', 'unwindow_tokens']


def window_tokens(x: Tensor, hw: tuple[int, int], num_windows: tuple[int, int]) -> Tensor:
    """(B, h, H*W, d) -> (B, h * nWh * nWw, H*W / nW, d), windows in raster order."""
    b, heads, _, d = x.shape
    (h, w), (nh, nw) = hw, num_windows
    x = x.view(b, heads, nh, h // nh, nw, w // nw, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, heads * nh * nw, -1, d)


def unwindow_tokens(x: Tensor, hw: tuple[int, int], num_windows: tuple[int, int],
                    heads: int) -> Tensor:
    """Inverse of :func:`window_tokens`: back to (B, h, H*W, d) in raster order."""
    (h, w), (nh, nw) = hw, num_windows
    b, d = x.shape[0], x.shape[-1]
    x = x.view(b, heads, nh, nw, h // nh, w // nw, d).permute(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, heads, h * w, d)


@MODELS.register_module()
class CrossAttentionProjector(nn.Module):
    """Student map (B, C_S, H, W) -> teacher-like tokens (B, H*W, C_T) by cross attention.

    Args:
        in_channels: student channels ``C_S``.
        out_channels: teacher channels ``C_T``.
        hw: (H, W) the positional embedding and learnable queries are built for.
        num_heads: attention heads (``C_T`` divisible by it).
        query_channels: channels of an externally supplied query (default ``C_T``).
        num_windows: (rows, cols) of attention windows; (1, 1) = global attention.
        softmax_scale: extra logit scale (5 in the official configs).
        self_query: learnable queries ``nn.Embedding(H*W, query_channels)``; without them a
            query must be passed to :meth:`forward`.
        ffn_ratio: hidden width of the FFN, times ``C_T``.
    """

    def __init__(self, in_channels: int, out_channels: int, hw: Sequence[int],
                 num_heads: int = 8, query_channels: int | None = None,
                 num_windows: Sequence[int] = (1, 1), softmax_scale: float = 5.0,
                 self_query: bool = True, ffn_ratio: int = 4) -> None:
        super().__init__()
        if out_channels % num_heads:
            raise ValueError(f'out_channels {out_channels} not divisible by {num_heads} heads')
        qc = out_channels if query_channels is None else query_channels
        self.hw = (int(hw[0]), int(hw[1]))
        self.num_heads = num_heads
        self.num_windows = (int(num_windows[0]), int(num_windows[1]))
        self.scale = (out_channels // num_heads) ** -0.5 * softmax_scale
        self.proj_student = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.BatchNorm2d(in_channels),
            nn.ReLU())
        self.pos_embed = nn.Parameter(torch.zeros(1, in_channels, *self.hw))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.query = nn.Embedding(self.hw[0] * self.hw[1], qc) if self_query else None
        self.proj_query = nn.Sequential(nn.Conv2d(qc, qc, 1), nn.ReLU())
        self.q = nn.Linear(qc, out_channels)
        self.k = nn.Linear(in_channels, out_channels)
        self.v = nn.Linear(in_channels, out_channels)
        self.proj = nn.Linear(out_channels, out_channels)
        self.norm = nn.LayerNorm(out_channels)
        self.ffn = nn.Sequential(nn.Linear(out_channels, out_channels * ffn_ratio), nn.ReLU(),
                                 nn.Linear(out_channels * ffn_ratio, out_channels))

    def _query_map(self, x: Tensor, query: Tensor | None) -> Tensor:
        b, _, h, w = x.shape
        if query is not None:  # (B, H*W, C_q) tokens, e.g. from teacher parameter perception
            return query.transpose(1, 2).reshape(b, -1, h, w)
        if self.query is None:
            raise ValueError('CrossAttentionProjector(self_query=False) needs a query')
        q = self.query.weight.view(1, *self.hw, -1).permute(0, 3, 1, 2)
        if (h, w) != self.hw:
            q = F.interpolate(q, size=(h, w), mode='bilinear', align_corners=False)
        return q.expand(b, -1, -1, -1)

    def attend(self, query: Tensor, tokens: Tensor, hw: tuple[int, int]) -> Tensor:
        """Multi-head cross attention (B, N, C_q) x (B, N, C_S) -> (B, N, C_T)."""
        b, n, _ = query.shape
        heads = self.num_heads

        def split(x: Tensor) -> Tensor:
            return x.view(b, x.shape[1], heads, -1).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(tokens)), split(self.v(tokens))
        windowed = self.num_windows != (1, 1)
        if windowed:
            if hw[0] % self.num_windows[0] or hw[1] % self.num_windows[1]:
                raise ValueError(f'a {hw} grid does not split into {self.num_windows} windows')
            q, k, v = (window_tokens(t, hw, self.num_windows) for t in (q, k, v))
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = attn @ v
        if windowed:
            out = unwindow_tokens(out, hw, self.num_windows, heads)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))

    def forward(self, x: Tensor, query: Tensor | None = None) -> Tensor:
        """(B, C_S, H, W) [+ query (B, H*W, C_q)] -> (B, H*W, C_T)."""
        h, w = x.shape[-2:]
        pos = self.pos_embed
        if (h, w) != self.hw:
            pos = F.interpolate(pos, size=(h, w), mode='bilinear', align_corners=False)
        tokens = (self.proj_student(x) + pos).flatten(2).transpose(1, 2)
        query = self.proj_query(self._query_map(x, query)).flatten(2).transpose(1, 2)
        a = self.norm(self.attend(query, tokens, (h, w)))
        return a + self.ffn(a)
