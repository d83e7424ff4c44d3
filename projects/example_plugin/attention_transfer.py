"""Example plugin: attention transfer as a densekd loss, defined outside densekd.

Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017, Eq. (2):
the spatial attention map of a feature ``F`` (N, C, H, W) is ``Q = sum_c |F_c|^p``
flattened to (N, H*W); the loss is ``|| Q_S/||Q_S||_2 - Q_T/||Q_T||_2 ||_2^2``, averaged
here over the images. Channel counts may differ (the maps are summed over channels), so
no projector is needed.

Loaded into a config with::

    custom_imports = dict(imports=['projects.example_plugin.attention_transfer'],
                          allow_failed_imports=False)
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS


def attention_transfer_loss(preds_S: Tensor, preds_T: Tensor, p: float = 2.0) -> Tensor:
    """(N, Cs, H, W), (N, Ct, H, W) -> scalar: mean over N of the squared distance of the
    L2-normalised attention maps."""
    if preds_S.shape[0] == 0:
        return preds_S.sum() * 0
    q_s = F.normalize(preds_S.abs().pow(p).sum(1).flatten(1), dim=1)
    q_t = F.normalize(preds_T.detach().abs().pow(p).sum(1).flatten(1), dim=1)
    return (q_s - q_t).pow(2).sum(1).mean()


@MODELS.register_module()
class AttentionTransferLoss(nn.Module):
    """Registered wrapper of :func:`attention_transfer_loss`; logged as ``loss_at``.

    Args:
        p: the power applied to the absolute activations.
        loss_weight: multiplier of the loss.
    """

    loss_name = 'at'
    requires_equal_channels = False  # FeatureMimic then needs no projector

    def __init__(self, p: float = 2.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.p = p
        self.loss_weight = loss_weight

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, Cs, H, W), (N, Ct, H, W) -> scalar."""
        return self.loss_weight * attention_transfer_loss(preds_S, preds_T, self.p)
