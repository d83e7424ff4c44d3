"""Runner hooks."""
from .distill_weight import DistillWeightHook, distill_weight_at
from .student_checkpoint import StudentCheckpointHook
from .teacher_eval import TeacherEvalHook

__all__ = ['DistillWeightHook', 'distill_weight_at', 'StudentCheckpointHook', 'TeacherEvalHook']
