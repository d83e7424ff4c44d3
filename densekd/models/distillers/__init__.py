"""The distillation model."""
from .distillation_model import DistillationModel
from .teacher_input import TeacherInputAdapter

__all__ = ['DistillationModel', 'TeacherInputAdapter']
