"""Distillation components: what to distil, from which taps, with which loss."""
from .base import DistillComponent
from .cross_arch import CrossArchDistill
from .detr_distill_feature import DETRFeatureDistill
from .detr_distill_logits import DETRLogitsDistill
from .detr_distill_query import DETRQueryPriorDistill
from .feature_mimic import FeatureMimic
from .gid import GeneralInstanceDistill
from .multi_view import FeatureDiscriminator, MultiViewGenerator
from .scalekd import ScaleKDDistill

__all__ = ['DistillComponent', 'CrossArchDistill', 'DETRFeatureDistill', 'DETRLogitsDistill',
           'DETRQueryPriorDistill', 'FeatureDiscriminator', 'FeatureMimic',
           'GeneralInstanceDistill', 'MultiViewGenerator', 'ScaleKDDistill']
