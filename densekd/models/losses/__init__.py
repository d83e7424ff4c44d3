"""Distillation losses: a pure tensor function plus a registered module per paper."""
from .cwd import ChannelWiseDivergence, channel_wise_divergence
from .l2 import L2Loss, l2_loss

__all__ = ['ChannelWiseDivergence', 'channel_wise_divergence', 'L2Loss', 'l2_loss']
