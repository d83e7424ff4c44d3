"""Distillation losses: a pure tensor function plus a registered module per paper.

The ``check_*`` helpers validate settings at build (used by every loss and component
constructor; a plugin's loss can use them too).
"""
from ._checks import check_choice, check_keys, check_positive, check_range, check_weight
from .cakd import GLLoss, PCALoss, discriminator_loss, generator_loss, gl_loss, pca_loss
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
    fgd_loss_levels,
    fgd_masks,
    fgd_masks_levels,
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
from .scalekd import (
    ScaleKDFrequencyLoss,
    ScaleKDSpatialLoss,
    dct2,
    dct_matrix,
    frequency_filter,
    idct2,
    scalekd_frequency_loss,
    scalekd_spatial_loss,
)

__all__ = [
    # settings checks
    'check_choice', 'check_keys', 'check_positive', 'check_range', 'check_weight',
    # CAKD (cross-architecture)
    'GLLoss', 'PCALoss', 'discriminator_loss', 'generator_loss', 'gl_loss', 'pca_loss',
    # CWD
    'ChannelWiseDivergence', 'channel_wise_divergence',
    # DETRDistill
    'HungarianDistillLoss', 'TargetAwareFeatureLoss', 'binary_entropy', 'box_distill_losses',
    'pair_weights', 'soft_bce_distill_loss', 'target_aware_feature_loss', 'target_aware_mask',
    # FGD
    'FGDLoss', 'GcBlock', 'fgd_attention', 'fgd_attention_loss', 'fgd_focal_and_global_losses',
    'fgd_focal_loss', 'fgd_global_loss', 'fgd_loss_levels', 'fgd_masks', 'fgd_masks_levels',
    # GID
    'GIDFeatureLoss', 'GIDRelationLoss', 'GIDResponseLoss', 'gid_feature_loss',
    'gid_relation_loss', 'gid_response_loss', 'normalized_distances',
    # FitNet, MGD, pixel KD, PKD
    'L2Loss', 'l2_loss', 'MGDLoss', 'mgd_loss', 'random_spatial_mask', 'PixelWiseKD',
    'pixel_wise_kd', 'PKDLoss', 'pkd_loss',
    # ScaleKD
    'ScaleKDFrequencyLoss', 'ScaleKDSpatialLoss', 'dct2', 'dct_matrix', 'frequency_filter',
    'idct2', 'scalekd_frequency_loss', 'scalekd_spatial_loss',
]
