"""Distillation components: what to distil, from which taps, with which loss."""
from .base import DistillComponent
from .detr_distill_feature import DETRFeatureDistill
from .detr_distill_logits import DETRLogitsDistill
from .detr_distill_query import DETRQueryPriorDistill
from .feature_mimic import FeatureMimic
from .gid import GeneralInstanceDistill

__all__ = ['DistillComponent', 'DETRFeatureDistill', 'DETRLogitsDistill',
           'DETRQueryPriorDistill', 'FeatureMimic', 'GeneralInstanceDistill']
