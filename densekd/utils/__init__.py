"""Config and checkpoint helpers."""
from .checkpoint import (
                         allow_mmengine_checkpoint_globals,
                         export_student_checkpoint,
                         load_weights_strict,
                         student_checkpoint_path,
)
from .config import load_model_spec, make_student_config, resolve_config_path

__all__ = [
    'allow_mmengine_checkpoint_globals', 'export_student_checkpoint', 'load_weights_strict',
    'student_checkpoint_path', 'load_model_spec', 'make_student_config', 'resolve_config_path',
]
