"""Matchers: which student prediction is supervised by which teacher prediction."""
from .costs import BoxL1Cost, GIoUCost, SoftClassificationCost, soft_bce_cost
from .hungarian import HungarianMatcher, linear_assignment

__all__ = ['BoxL1Cost', 'GIoUCost', 'SoftClassificationCost', 'soft_bce_cost',
           'HungarianMatcher', 'linear_assignment']
