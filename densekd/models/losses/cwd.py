"""Channel-wise distillation (CWD).

Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021, Eq. (4):
each channel is turned into a distribution over locations, ``phi(y_c) = softmax(y_c / tau)``
over H*W, and ``L = tau^2 / C * sum_c KL(phi(y_c^T) || phi(y_c^S))``.

Reduction follows the official code (TorchDistiller ``CriterionCWD``) and MMRazor's
``ChannelWiseDivergence``, which agree: the KL is summed over locations and divided by
``N*C`` (mean over images and channels). The detection port the CWD authors point to
(``pppppM/mmdetection-distiller``, ``mmdet/distillation/losses/cwd.py``) computes the
cross-entropy ``-tau^2 * sum p_T log p_S / (N*C)`` instead: larger than this KL by the
teacher's entropy ``tau^2 * sum_{n,c} H(p_T) / (N*C)``, which does not depend on the student,
so the gradients are the same and only the logged value differs. densekd keeps the KL (zero
when the student matches the teacher), as the paper's equation and the two codes above.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from densekd.registry import MODELS

from ._checks import check_positive, check_weight

__all__ = ['channel_wise_divergence', 'ChannelWiseDivergence']


def channel_wise_divergence(preds_S: Tensor, preds_T: Tensor, tau: float = 1.0) -> Tensor:
    """CWD between student and teacher maps.

    Args:
        preds_S: student map, (N, C, H, W).
        preds_T: teacher map, (N, C, H, W); detached.
        tau: temperature.

    Returns:
        ``tau^2 * sum_{n,c,hw} p_T (log p_T - log p_S) / (N*C)``, a scalar
        (summed over HW, mean over N*C). Empty input gives a graph-connected zero.
    """
    if preds_S.shape != preds_T.shape:
        raise ValueError(f'channel_wise_divergence: student {tuple(preds_S.shape)} and teacher '
                         f'{tuple(preds_T.shape)} differ; add a projector or resize')
    if preds_S.dim() != 4:
        raise ValueError(f'channel_wise_divergence expects (N, C, H, W), got {preds_S.dim()}-d')
    n, c, h, w = preds_S.shape
    if preds_S.numel() == 0:
        return preds_S.sum() * 0
    log_p_s = F.log_softmax(preds_S.reshape(n * c, h * w) / tau, dim=1)
    log_p_t = F.log_softmax(preds_T.detach().reshape(n * c, h * w) / tau, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl * (tau ** 2) / (n * c)


@MODELS.register_module()
class ChannelWiseDivergence(nn.Module):
    """Registered wrapper of :func:`channel_wise_divergence`; logged as ``loss_cwd``.

    Args:
        tau: temperature (the official segmentation recipe uses 4, MMRazor's 1).
        loss_weight: multiplier of the loss.
    """

    loss_name = 'cwd'

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.tau = check_positive('ChannelWiseDivergence', 'tau', tau, 'the softmax temperature')
        self.loss_weight = check_weight('ChannelWiseDivergence', 'loss_weight', loss_weight)

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """(N, C, H, W) x 2 -> scalar."""
        return self.loss_weight * channel_wise_divergence(preds_S, preds_T, self.tau)
