"""Projectors (adapters) that map student features into the teacher's space."""
from .conv import ConvProjector

__all__ = ['ConvProjector']
