"""densekd: knowledge distillation for dense prediction on mmdet 3.x and mmseg 1.x."""
from .utils.checkpoint import allow_mmengine_checkpoint_globals
from .version import __version__

allow_mmengine_checkpoint_globals()

__all__ = ['__version__']
