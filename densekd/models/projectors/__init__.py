"""Projectors (adapters) that map student features into the teacher's space."""
from .conv import ConvProjector
from .gl import GLProjector
from .pca import PCAProjector
from .scalekd import CrossAttentionProjector

__all__ = ['ConvProjector', 'CrossAttentionProjector', 'GLProjector', 'PCAProjector']
