"""Operators densekd needs beyond mmcv's."""
from .roi_align import (
    SeparableRoIAlign,
    roi_align_weights,
    separable_roi_align,
    separable_roi_align_levels,
)

__all__ = ['SeparableRoIAlign', 'roi_align_weights', 'separable_roi_align',
           'separable_roi_align_levels']
