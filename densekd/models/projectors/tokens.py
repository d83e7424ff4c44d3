"""Token <-> feature-map plumbing for transformer teachers and CNN students.

Every cross-architecture projector works on one of two layouts:

* maps ``(B, C, H, W)`` -- CNN features, or a Swin/MiT stage output (mmdet/mmseg backbones
  return their stage outputs as maps);
* tokens ``(B, N, C)`` -- the inside of a transformer block, ``N = H * W`` plus
  ``num_extra_tokens`` leading extra tokens (ViT's class token).

and, for the teacher's attention, on per-head queries/keys/values ``(B', heads, N', d)``
where ``B' = B * windows`` for window attention (Swin) and ``B' = B`` for global attention.

What "the teacher's attention" is, concretely
---------------------------------------------
Swin (mmdet/mmseg ``ShiftWindowMSA`` -> ``WindowMSA`` with a ``qkv`` Linear): tap
``<stage>.blocks.<j>.attn.w_msa.qkv``. It records ``(B * nW, ws * ws, 3C)``: the window tokens
of the padded (``pad_r``/``pad_b`` to a multiple of ``ws``), for odd ``j`` cyclically shifted by
``-shift`` map. :func:`split_qkv` turns it into ``q, k, v``. The teacher's attention is
``softmax(d^-1/2 q k^T + M)`` inside each window, where ``M`` is Swin's shift mask (-100 between
tokens that came from different image regions before the roll; zero for unshifted blocks).
Swin's relative-position bias is a learned prior of the teacher, not a function of the
input; it is left out by default and, when asked for, added to both the teacher's and the
student's logits (:func:`swin_relative_position_bias`), so that a student path given the
teacher's q and k reproduces the teacher's attention exactly. The student map is resized to
the teacher's (unpadded) grid and cut into the same windows by :func:`window_partition`.

ViT (mmseg ``VisionTransformer``, attention is mmcv ``MultiheadAttention`` wrapping
``nn.MultiheadAttention`` whose q/k/v projection is a packed parameter, not a module): tap the
block's pre-attention norm ``backbone.layers.<i>.ln1`` (tokens, class token first) and get
``q, k, v`` with :func:`qkv_from_mha` from ``backbone.layers.<i>.attn.attn``. The attention is
global. SegFormer (mmseg ``MixVisionTransformer``): tap ``backbone.layers.<s>.1.<j>.norm1``;
queries use all ``N`` tokens but keys/values the spatially reduced ones
(``attn.sr`` conv + ``attn.norm``) -- :func:`qkv_from_mha` takes them as ``kv_tokens``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    'map_to_tokens', 'tokens_to_map', 'to_map', 'align_map', 'window_partition',
    'window_reverse', 'swin_shift_mask', 'split_qkv', 'merge_heads', 'attention_map',
    'qkv_from_mha', 'swin_relative_position_bias',
]


def map_to_tokens(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, H*W, C), row-major like a flattened patch grid."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_map(x: Tensor, hw: tuple[int, int] | None = None,
                  num_extra_tokens: int = 0) -> Tensor:
    """(B, N, C) tokens -> (B, C, H, W), dropping ``num_extra_tokens`` leading tokens.

    Args:
        x: tokens; the first ``num_extra_tokens`` (e.g. a class token) are dropped.
        hw: the patch grid; inferred for square grids when None.
        num_extra_tokens: leading non-spatial tokens.
    """
    x = x[:, num_extra_tokens:]
    n = x.shape[1]
    if hw is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f'{n} tokens do not form a square grid; pass hw=(H, W)')
        hw = (side, side)
    if hw[0] * hw[1] != n:
        raise ValueError(f'{n} spatial tokens cannot be laid out as {tuple(hw)}')
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], hw[0], hw[1])


def to_map(x: Tensor, hw: tuple[int, int] | None = None, num_extra_tokens: int = 0) -> Tensor:
    """A map ``(B, C, H, W)`` unchanged, or tokens ``(B, N, C)`` laid out as one."""
    if x.dim() == 4:
        return x
    if x.dim() == 3:
        return tokens_to_map(x, hw, num_extra_tokens)
    raise ValueError(f'expected (B, C, H, W) or (B, N, C), got {tuple(x.shape)}')


def align_map(x: Tensor, size: tuple[int, int], mode: str = 'bilinear') -> Tensor:
    """Resize a map to ``size``: ``'bilinear'`` interpolation, or ``'pool'`` (adaptive
    average pooling when shrinking, bilinear when growing). No-op when already that size."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == 'pool' and x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    if mode not in ('bilinear', 'pool'):
        raise ValueError(f"mode must be 'bilinear' or 'pool', got {mode!r}")
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def window_partition(x: Tensor, window_size: int, shift_size: int = 0) -> Tensor:
    """Cut a map into Swin windows, as mmdet/mmseg ``ShiftWindowMSA`` does to its input.

    Pads right/bottom to a multiple of ``window_size``, rolls by ``-shift_size`` when
    shifting, and orders windows batch-major, then row-major.

    Args:
        x: (B, C, H, W).
        window_size: window side ``ws``.
        shift_size: cyclic shift (0 for W-MSA blocks).

    Returns:
        (B * nW, ws * ws, C).
    """
    b, c, h, w = x.shape
    ws = window_size
    x = F.pad(x, (0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
    if shift_size > 0:
        x = torch.roll(x, shifts=(-shift_size, -shift_size), dims=(2, 3))
    hp, wp = x.shape[-2:]
    x = x.view(b, c, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: Tensor, hw: tuple[int, int], window_size: int,
                   shift_size: int = 0) -> Tensor:
    """Inverse of :func:`window_partition`: (B * nW, ws * ws, C) -> (B, C, H, W)."""
    ws = window_size
    h, w = hw
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
    c = windows.shape[-1]
    x = windows.view(-1, hp // ws, wp // ws, ws, ws, c).permute(0, 5, 1, 3, 2, 4)
    x = x.reshape(-1, c, hp, wp)
    if shift_size > 0:
        x = torch.roll(x, shifts=(shift_size, shift_size), dims=(2, 3))
    return x[:, :, :h, :w]


def swin_shift_mask(hw: tuple[int, int], window_size: int, shift_size: int,
                    device: torch.device | None = None) -> Tensor | None:
    """Swin's additive SW-MSA mask, (nW, ws*ws, ws*ws) with 0 / -100, or None when unshifted.

    Same regions as mmdet's ``ShiftWindowMSA``: after the roll, tokens of one window that
    came from different image regions must not attend to each other.
    """
    if shift_size <= 0:
        return None
    ws = window_size
    hp, wp = math.ceil(hw[0] / ws) * ws, math.ceil(hw[1] / ws) * ws
    img = torch.zeros(1, 1, hp, wp, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift_size), slice(-shift_size, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift_size), slice(-shift_size, None)):
            img[:, :, hs, wsl] = cnt
            cnt += 1
    regions = window_partition(img, ws).squeeze(-1)  # (nW, ws*ws), no further roll
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return torch.where(diff != 0, torch.full_like(diff, -100.0), torch.zeros_like(diff))


def split_qkv(qkv: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """A packed ``qkv`` Linear output (B', N, 3C) -> q, k, v, each (B', heads, N, C/heads).

    The layout of mmdet/mmseg ``WindowMSA``: ``reshape(B', N, 3, heads, d)``.
    """
    b, n, c3 = qkv.shape
    qkv = qkv.reshape(b, n, 3, num_heads, c3 // (3 * num_heads)).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def merge_heads(x: Tensor) -> Tensor:
    """(B', heads, N, d) -> (B', N, heads * d)."""
    return x.transpose(1, 2).flatten(2)


def attention_map(q: Tensor, k: Tensor, bias: Tensor | None = None,
                  window_mask: Tensor | None = None, scale: float | None = None) -> Tensor:
    """``softmax(scale * q k^T + bias + mask)``; q (B', h, N, d), k (B', h, M, d) -> (B', h, N, M).

    Args:
        q: queries.
        k: keys.
        bias: added to the logits, broadcast (e.g. a (h, N, M) relative-position bias).
        window_mask: (nW, N, M), added per window as Swin does (``B' = B * nW``).
        scale: default ``d ** -0.5``.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        logits = logits + bias
    if window_mask is not None:
        nw = window_mask.shape[0]
        logits = (logits.view(-1, nw, *logits.shape[1:]) + window_mask[None, :, None])
        logits = logits.flatten(0, 1)
    return logits.softmax(dim=-1)


def qkv_from_mha(tokens: Tensor, mha: nn.MultiheadAttention,
                 kv_tokens: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (B, heads, N, d) of a ``nn.MultiheadAttention`` (batch-first tokens).

    For mmseg ViT (``layers.<i>.attn.attn``) give the ``ln1`` output; for SegFormer give
    ``norm1``'s output as ``tokens`` and ``attn.norm(attn.sr(map))`` tokens as ``kv_tokens``.
    """
    kv_tokens = tokens if kv_tokens is None else kv_tokens
    c = mha.embed_dim
    w, b = mha.in_proj_weight, mha.in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else b.split(c)
    wq, wk, wv = w.split(c)
    heads = mha.num_heads

    def heads_of(x: Tensor) -> Tensor:
        return x.view(x.shape[0], x.shape[1], heads, c // heads).transpose(1, 2)

    return (heads_of(F.linear(tokens, wq, bq)), heads_of(F.linear(kv_tokens, wk, bk)),
            heads_of(F.linear(kv_tokens, wv, bv)))


def swin_relative_position_bias(w_msa: nn.Module) -> Tensor:
    """The (heads, ws*ws, ws*ws) relative-position bias of an mmdet/mmseg ``WindowMSA``."""
    table = w_msa.relative_position_bias_table
    index = w_msa.relative_position_index
    n = index.shape[0]
    return table[index.reshape(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
