"""Distillation losses: a pure tensor function plus a registered module per paper."""
from .cwd import ChannelWiseDivergence, channel_wise_divergence
from .detr_distill import (
    HungarianDistillLoss,
    TargetAwareFeatureLoss,
    binary_entropy,
    box_distill_losses,
    pair_weights,
    soft_bce_distill_loss,
    target_aware_feature_loss,
    target_aware_mask,
)
from .fgd import (
    FGDLoss,
    GcBlock,
    fgd_attention,
    fgd_attention_loss,
    fgd_focal_and_global_losses,
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
    # CWD
    'ChannelWiseDivergence', 'channel_wise_divergence',
    # DETRDistill
    'HungarianDistillLoss', 'TargetAwareFeatureLoss', 'binary_entropy', 'box_distill_losses',
    'pair_weights', 'soft_bce_distill_loss', 'target_aware_feature_loss', 'target_aware_mask',
    # FGD
    'FGDLoss', 'GcBlock', 'fgd_attention', 'fgd_attention_loss', 'fgd_focal_and_global_losses',
    'fgd_focal_loss', 'fgd_global_loss', 'fgd_masks',
    # GID
    'GIDFeatureLoss', 'GIDRelationLoss', 'GIDResponseLoss', 'gid_feature_loss',
    'gid_relation_loss', 'gid_response_loss', 'normalized_distances',
    # FitNet, MGD, pixel KD, PKD
    'L2Loss', 'l2_loss', 'MGDLoss', 'mgd_loss', 'random_spatial_mask', 'PixelWiseKD',
    'pixel_wise_kd', 'PKDLoss', 'pkd_loss',
]
