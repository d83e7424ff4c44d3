"""A schedule for the distillation loss weight: linear warm-up and a stop point."""
from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from densekd.registry import HOOKS

__all__ = ['DistillWeightHook', 'distill_weight_at']


def distill_weight_at(iteration: int, epoch: int, warmup_iters: int = 0,
                      stop_iter: int | None = None, stop_epoch: int | None = None) -> float:
    """The weight multiplying every distillation loss at a (0-based) iteration and epoch.

    ``(iteration + 1) / warmup_iters`` during warm-up, then 1; 0 from ``stop_iter`` or
    ``stop_epoch`` on.
    """
    if (stop_iter is not None and iteration >= stop_iter) or (
            stop_epoch is not None and epoch >= stop_epoch):
        return 0.0
    if warmup_iters > 0 and iteration < warmup_iters:
        return (iteration + 1) / warmup_iters
    return 1.0


@HOOKS.register_module()
class DistillWeightHook(Hook):
    """Set ``model.distill_weight`` before each training iteration.

    At weight 0 the teacher is not run at all, so stopping distillation also stops its
    cost.

    Args:
        warmup_iters: linear warm-up length in iterations (0: none).
        stop_iter: iteration from which distillation is off.
        stop_epoch: epoch from which distillation is off.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: int = 0, stop_iter: int | None = None,
                 stop_epoch: int | None = None) -> None:
        self.warmup_iters = warmup_iters
        self.stop_iter = stop_iter
        self.stop_epoch = stop_epoch

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Update the weight and log it as ``distill_weight``."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        weight = distill_weight_at(runner.iter, runner.epoch, self.warmup_iters,
                                   self.stop_iter, self.stop_epoch)
        model.distill_weight = weight
        runner.message_hub.update_scalar('train/distill_weight', weight)
