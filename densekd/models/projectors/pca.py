"""CAKD's partially cross-attention (PCA) projector (Liu et al., ACCV 2022, Sec. 3.2).

Reconstructed from the paper's description (there is no official code, and third-party
versions disagree): the student map ``h_S`` is projected by three 3x3 convolutions to
``Q_S, K_S, V_S`` in the teacher's attention space; during training each of them is replaced
by the teacher's ``Q_T, K_T, V_T`` with probability ``p`` ("partially cross" attention, the
student's queries meeting the teacher's keys and so on), and the student's attention
``softmax(Q~ K~^T / sqrt(d))`` and values are compared with the teacher's by
:func:`densekd.models.losses.pca_loss`. UNVERIFIED against the paper text: whether the
replacement is per matrix (default here) or per element (``replace='element'``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from densekd.registry import MODELS

from .tokens import attention_map, swin_shift_mask, window_partition

__all__ = ['PCAProjector']


@MODELS.register_module()
class PCAProjector(nn.Module):
    """Student map -> (Q_S, K_S, V_S) -> partially cross attention with the teacher's Q/K/V.

    Args:
        in_channels: student channels ``C_S``.
        out_channels: teacher channels ``C_T`` (= heads * head dim of the tapped attention).
        num_heads: the teacher attention's heads.
        p: probability of replacing each of Q/K/V by the teacher's (training only).
        replace: ``'matrix'`` -- one draw per Q/K/V per image (per window for window
            attention); ``'element'`` -- one draw per element.
        kernel_size: of the three projection convolutions (3 in the paper).
    """

    def __init__(self, in_channels: int, out_channels: int, num_heads: int = 1,
                 p: float = 0.5, replace: str = 'matrix', kernel_size: int = 3) -> None:
        super().__init__()
        if out_channels % num_heads:
            raise ValueError(f'out_channels {out_channels} not divisible by {num_heads} heads')
        if not 0.0 <= p <= 1.0:
            raise ValueError(f'p must be in [0, 1], got {p}')
        if replace not in ('matrix', 'element'):
            raise ValueError(f"replace must be 'matrix' or 'element', got {replace!r}")
        self.num_heads = num_heads
        self.p = p
        self.replace = replace
        pad = kernel_size // 2
        self.q = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)
        self.k = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)
        self.v = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)

    def _heads(self, x: Tensor, window_size: int | None, shift_size: int) -> Tensor:
        """(B, C, H, W) -> (B', heads, N, d) in the teacher attention's token layout."""
        if window_size is None:
            tokens = x.flatten(2).transpose(1, 2)
        else:
            tokens = window_partition(x, window_size, shift_size)
        b, n, c = tokens.shape
        return tokens.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _mix(self, s: Tensor, t: Tensor) -> Tensor:
        """Student tensor replaced by the teacher's w.p. ``p``, per row of B' (an image or one
        of its windows) or per element."""
        if self.replace == 'element':
            keep = torch.rand_like(s) >= self.p
        else:
            keep = torch.rand(s.shape[0], 1, 1, 1, device=s.device) >= self.p
        return torch.where(keep, s, t.to(s.dtype))

    def forward(self, x: Tensor, teacher_qkv: tuple[Tensor, Tensor, Tensor] | None = None,
                window_size: int | None = None, shift_size: int = 0,
                bias: Tensor | None = None) -> dict[str, Tensor]:
        """Project and attend.

        Args:
            x: student map (B, C_S, H, W), already at the teacher's grid (H, W).
            teacher_qkv: the teacher's q, k, v, each (B', heads, N, d) in the same layout
                (windows of ``window_size`` shifted by ``shift_size``, or global when
                ``window_size`` is None). Needed for the replacement; ignored in eval mode.
            window_size: Swin window side, or None for global attention.
            shift_size: Swin shift of the tapped block (its SW-MSA mask is applied).
            bias: optional logits bias (e.g. the teacher's relative-position bias).

        Returns:
            ``attn`` (B', heads, N, N), ``q``, ``k``, ``value`` (B', heads, N, d) of the
            (partially replaced) student path.
        """
        q, k, v = (self._heads(conv(x), window_size, shift_size)
                   for conv in (self.q, self.k, self.v))
        if teacher_qkv is not None:
            for s, t in zip((q, k, v), teacher_qkv):
                if s.shape != t.shape:
                    raise ValueError(f'PCAProjector: student {tuple(s.shape)} vs teacher '
                                     f'{tuple(t.shape)} q/k/v; check the grid and windows')
            if self.training and self.p > 0:
                q, k, v = (self._mix(s, t) for s, t in zip((q, k, v), teacher_qkv))
        mask = None
        if window_size is not None and shift_size > 0:
            mask = swin_shift_mask(x.shape[-2:], window_size, shift_size, device=x.device)
        attn = attention_map(q, k, bias=bias, window_mask=mask)
        return dict(attn=attn, q=q, k=k, value=v)
