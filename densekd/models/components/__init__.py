"""Distillation components: what to distil, from which taps, with which loss."""
from .base import DistillComponent
from .feature_mimic import FeatureMimic
from .gid import GeneralInstanceDistill

__all__ = ['DistillComponent', 'FeatureMimic', 'GeneralInstanceDistill']
