"""Distillation losses: a pure tensor function plus a registered module per paper."""
from .cwd import ChannelWiseDivergence, channel_wise_divergence
from .fgd import (
    FGDLoss,
    GcBlock,
    fgd_attention,
    fgd_attention_loss,
    fgd_focal_loss,
    fgd_global_loss,
    fgd_masks,
)
from .gid import (
    GIDFeatureLoss,
    GIDRelationLoss,
    GIDResponseLoss,
    gid_feature_loss,
    gid_relation_loss,
    gid_response_loss,
    normalized_distances,
)
from .l2 import L2Loss, l2_loss
from .mgd import MGDLoss, mgd_loss, random_spatial_mask
from .pixel_kd import PixelWiseKD, pixel_wise_kd
from .pkd import PKDLoss, pkd_loss

__all__ = [
    'ChannelWiseDivergence', 'channel_wise_divergence', 'FGDLoss', 'GcBlock', 'fgd_attention',
    'fgd_attention_loss', 'fgd_focal_loss', 'fgd_global_loss', 'fgd_masks', 'GIDFeatureLoss',
    'GIDRelationLoss', 'GIDResponseLoss', 'gid_feature_loss', 'gid_relation_loss',
    'gid_response_loss', 'normalized_distances', 'L2Loss',
    'l2_loss', 'MGDLoss', 'mgd_loss', 'random_spatial_mask', 'PixelWiseKD', 'pixel_wise_kd',
    'PKDLoss', 'pkd_loss',
]
