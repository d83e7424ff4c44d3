"""densekd: knowledge distillation for dense prediction on mmdet 3.x and mmseg 1.x."""
from .utils.checkpoint import use_safe_checkpoint_loading
from .utils.compat import fix_config_package_names
from .version import __version__

use_safe_checkpoint_loading()
fix_config_package_names()

__all__ = ['__version__']
