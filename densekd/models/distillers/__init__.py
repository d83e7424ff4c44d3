"""The distillation model and its optimiser constructor."""
from .distillation_model import DistillationModel
from .optim_constructor import DiscriminatorOptimWrapperConstructor
from .teacher_input import TeacherInputAdapter

__all__ = ['DistillationModel', 'DiscriminatorOptimWrapperConstructor', 'TeacherInputAdapter']
