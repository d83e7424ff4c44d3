"""Matchers: which student prediction is supervised by which teacher prediction."""
from .costs import BoxL1Cost, GIoUCost, SoftClassificationCost, soft_bce_cost
from .hungarian import HungarianMatcher, batched_linear_assignment, linear_assignment

__all__ = ['BoxL1Cost', 'GIoUCost', 'SoftClassificationCost', 'soft_bce_cost',
           'HungarianMatcher', 'linear_assignment', 'batched_linear_assignment']
