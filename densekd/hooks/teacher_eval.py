"""Evaluate the teacher once, before training, on the validation set."""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from densekd.registry import HOOKS

__all__ = ['TeacherEvalHook']


@HOOKS.register_module()
class TeacherEvalHook(Hook):
    """Score the (frozen) teacher once with the validation dataloader and evaluator.

    Validation during training scores the student; the teacher does not change, so one
    evaluation is enough. It runs outside the validation loop, so checkpoint hooks
    (``save_best``) never see the teacher's metrics. Results are logged with the prefix
    ``teacher/`` and stored in the message hub as ``teacher_metrics``.
    """

    priority = 'LOW'

    def before_train(self, runner) -> None:
        """Run the evaluation unless the run resumed after it."""
        if runner.iter > 0 or runner.message_hub.get_info('teacher_metrics') is not None:
            return
        loop = runner.val_loop
        if loop is None:
            runner.logger.warning('TeacherEvalHook: no validation configured (val_cfg); '
                                  'the teacher is not scored')
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        previous, model.predict_with = model.predict_with, 'teacher'
        runner.model.eval()
        try:
            with torch.no_grad():
                for data in loop.dataloader:
                    outputs = runner.model.val_step(data)
                    loop.evaluator.process(data_samples=outputs, data_batch=data)
            metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        finally:
            model.predict_with = previous
            runner.model.train()
        metrics = {f'teacher/{k}': v for k, v in metrics.items()}
        runner.message_hub.update_info('teacher_metrics', metrics)
        runner.logger.info('teacher: ' + '  '.join(f'{k}: {v}' for k, v in metrics.items()))
