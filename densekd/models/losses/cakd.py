"""Losses of Cross-Architecture KD (Liu et al., "Cross-Architecture Knowledge Distillation",
ACCV 2022, arXiv 2207.05273).

There is no official code and the third-party versions disagree, so these are reconstructed
from the paper's description (see ``/work/shared/reference/methods.md`` E.1):

* PCA projector loss ("L_proj1"): ``MSE(Attn_S, Attn_T) + MSE(R(V_S), R(V_T))`` with
  ``Attn = softmax(Q K^T / sqrt(d))`` per head and the value relation
  ``R(V) = softmax(V V^T / sqrt(d))`` (MiniLM-style; ``value='mse'`` compares V directly).
  UNVERIFIED: the exact form of the value term.
* GL projector loss ("L_proj2"): ``MSE(GL(h_S), h_T)``.
* Multi-view robust training: a discriminator ``D`` (GAP -> 3-layer MLP -> sigmoid) tells the
  teacher's features (real) from multi-view projected student features (fake);
  ``L_D = BCE(D(h_T), 1) + BCE(D(h~_S), 0)`` updates ``D`` only, the student gets the
  generator loss ``L_G = BCE(D(h~_S), 1)``. UNVERIFIED: the paper's exact GAN form.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_choice, check_weight

__all__ = ['pca_loss', 'gl_loss', 'discriminator_loss', 'generator_loss', 'PCALoss', 'GLLoss']


def _mse(a: Tensor, b: Tensor) -> Tensor:
    if a.numel() == 0:
        return a.sum() * 0
    return F.mse_loss(a, b.detach())


def value_relation(v: Tensor) -> Tensor:
    """``softmax(V V^T / sqrt(d))``: (B', h, N, d) -> (B', h, N, N)."""
    return ((v @ v.transpose(-2, -1)) * v.shape[-1] ** -0.5).softmax(dim=-1)


def pca_loss(attn_S: Tensor, attn_T: Tensor, value_S: Tensor, value_T: Tensor,
             value: str = 'relation') -> Tensor:
    """CAKD PCA-projector loss (reconstructed "L_proj1").

    Args:
        attn_S: student (partially cross) attention, (B', heads, N, N).
        attn_T: the teacher's attention, same shape (detached).
        value_S: student values, (B', heads, N, d).
        value_T: teacher values, same shape (detached).
        value: ``'relation'`` (MSE of value relations) or ``'mse'`` (MSE of the values).

    Returns:
        Scalar: mean over all elements of each term, summed. Empty input -> graph zero.
    """
    if attn_S.shape != attn_T.shape or value_S.shape != value_T.shape:
        raise ValueError(f'pca_loss: shapes {tuple(attn_S.shape)}/{tuple(attn_T.shape)} and '
                         f'{tuple(value_S.shape)}/{tuple(value_T.shape)} differ')
    if value == 'relation':
        v_term = _mse(value_relation(value_S), value_relation(value_T.detach()))
    elif value == 'mse':
        v_term = _mse(value_S, value_T)
    else:
        raise ValueError(f"value must be 'relation' or 'mse', got {value!r}")
    return _mse(attn_S, attn_T) + v_term


def gl_loss(preds_S: Tensor, preds_T: Tensor) -> Tensor:
    """CAKD GL-projector loss: MSE, mean over all elements; (B, C, H, W) or (B, N, C)."""
    if preds_S.shape != preds_T.shape:
        raise ValueError(f'gl_loss: student {tuple(preds_S.shape)} vs teacher '
                         f'{tuple(preds_T.shape)}')
    return _mse(preds_S, preds_T)


def discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """``BCE(D(real), 1) + BCE(D(fake), 0)`` on probabilities (B,) / (B, 1); batch mean."""
    if d_real.numel() == 0:
        return d_real.sum() * 0 + d_fake.sum() * 0
    return (F.binary_cross_entropy(d_real, torch.ones_like(d_real))
            + F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake)))


def generator_loss(d_fake: Tensor) -> Tensor:
    """``BCE(D(fake), 1)``, the non-saturating generator loss; batch mean."""
    if d_fake.numel() == 0:
        return d_fake.sum() * 0
    return F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))


@MODELS.register_module()
class PCALoss(nn.Module):
    """Registered wrapper of :func:`pca_loss`; takes the PCA projector's output dicts.

    Args:
        loss_weight: multiplier.
        value: see :func:`pca_loss`.
    """

    loss_name = 'pca'

    def __init__(self, loss_weight: float = 1.0, value: str = 'relation') -> None:
        super().__init__()
        self.loss_weight = check_weight('PCALoss', 'loss_weight', loss_weight)
        self.value = check_choice('PCALoss', 'value', value, ('relation', 'mse'))

    def forward(self, attn_S: Tensor, attn_T: Tensor, value_S: Tensor,
                value_T: Tensor) -> Tensor:
        """See :func:`pca_loss`."""
        return self.loss_weight * pca_loss(attn_S, attn_T, value_S, value_T, self.value)


@MODELS.register_module()
class GLLoss(nn.Module):
    """Registered wrapper of :func:`gl_loss`.

    Args:
        loss_weight: multiplier.
    """

    loss_name = 'gl'

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_weight('GLLoss', 'loss_weight', loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(B, C, H, W) x 2 -> scalar."""
        return self.loss_weight * gl_loss(preds_S, preds_T)
