"""Runner hooks."""
from .distill_weight import DistillWeightHook, distill_weight_at
from .finite_loss import FiniteLossHook, NonFiniteLossError, non_finite_losses
from .student_checkpoint import StudentCheckpointHook
from .teacher_eval import TeacherEvalHook

__all__ = ['DistillWeightHook', 'distill_weight_at', 'FiniteLossHook', 'NonFiniteLossError',
           'non_finite_losses', 'StudentCheckpointHook', 'TeacherEvalHook']
