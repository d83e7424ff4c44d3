"""The distillation model, its optimiser constructor and its DDP wrapper."""
from .ddp import DistillDistributedDataParallel
from .distillation_model import DistillationModel
from .optim_constructor import DiscriminatorOptimWrapperConstructor
from .teacher_input import TeacherInputAdapter

__all__ = ['DistillationModel', 'DiscriminatorOptimWrapperConstructor',
           'DistillDistributedDataParallel', 'TeacherInputAdapter']
