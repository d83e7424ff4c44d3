"""Runner hooks."""
from .distill_weight import DistillWeightHook, distill_weight_at
from .student_checkpoint import StudentCheckpointHook

__all__ = ['DistillWeightHook', 'distill_weight_at', 'StudentCheckpointHook']
