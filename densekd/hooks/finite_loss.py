"""Stop training at the first non-finite loss, before that iteration is checkpointed."""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from densekd.registry import HOOKS

__all__ = ['FiniteLossHook', 'NonFiniteLossError', 'non_finite_losses']


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite (raised by :class:`FiniteLossHook`)."""


def _is_finite(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, numbers.Real):
        return math.isfinite(float(value))
    return True  # not a number (a string, None): nothing to check


def non_finite_losses(log_vars: Mapping[str, Any], key_contains: str = 'loss',
                      ) -> dict[str, Any]:
    """The entries of ``log_vars`` whose key contains ``key_contains`` and whose value is NaN
    or infinite (tensors: any element), in their order.

    Args:
        log_vars: what a model's ``train_step`` returns (mmengine's ``parse_losses`` gives
            0-d tensors, the total first under ``'loss'``).
        key_contains: which keys are losses (mmengine sums the keys containing ``'loss'``).

    Returns:
        ``{key: value}`` of the non-finite losses; empty when all are finite.
    """
    return {k: v for k, v in log_vars.items() if key_contains in k and not _is_finite(v)}


def _format(value: Any) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.detach().float().item()
    return repr(value) if not isinstance(value, torch.Tensor) else f'tensor{tuple(value.shape)}'


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` (a ``FloatingPointError``) at the first iteration
    whose loss is NaN or infinite, naming the loss keys, the iteration and the epoch.

    It reads the log variables the model's ``train_step`` returns, in ``after_train_iter``
    at ``HIGH`` priority: before mmengine's ``CheckpointHook`` (``VERY_LOW``) and densekd's
    ``StudentCheckpointHook`` (``VERY_LOW``) run for that iteration, so the diverged weights
    are never saved, and the process exits non-zero. Checkpoints of earlier iterations stay.
    The iteration and epoch in the message count from 1, as mmengine's log lines do (no
    epoch for an iteration-based loop).

    In a distributed run the ranks agree (one ``all_reduce`` of a flag per iteration), so all
    of them stop at the same iteration and none goes on to save.

    Mixed precision: ``AmpOptimWrapper`` skips a step whose *gradients* overflow, which is
    normal with dynamic loss scaling and not checked here; the logged *loss values* are not
    scaled, and densekd's components compute in float32, so a non-finite loss value is a
    real divergence (or a setting that produces NaN).

    Args:
        key_contains: log keys that hold losses (default: those containing ``'loss'``, the
            keys mmengine sums into the total).
    """

    priority = 'HIGH'

    def __init__(self, key_contains: str = 'loss') -> None:
        self.key_contains = key_contains

    def _count_non_finite(self, outputs: Mapping[str, Any]) -> torch.Tensor:
        """The number of non-finite loss entries, a float tensor (1,) on the losses' device,
        computed without a host read."""
        values = [v for k, v in outputs.items() if self.key_contains in k]
        tensors = [v.detach() for v in values if isinstance(v, torch.Tensor)]
        device = tensors[0].device if tensors else torch.device('cpu')
        flags = [(~torch.isfinite(t).all()).to(device) for t in tensors]
        flags += [torch.tensor(not _is_finite(v), device=device) for v in values
                  if not isinstance(v, torch.Tensor)]
        if not flags:
            return torch.zeros(1, device=device)
        return torch.stack(flags).float().sum().reshape(1)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Mapping[str, Any] | None = None) -> None:
        """Raise if any loss in ``outputs`` is NaN or infinite (on any rank)."""
        if not isinstance(outputs, Mapping):
            return
        count = self._count_non_finite(outputs)
        if get_world_size() > 1:
            all_reduce(count)  # sum over ranks: every rank stops at the same iteration
        if count.item() == 0:  # the one host read per iteration
            return
        bad = non_finite_losses(outputs, self.key_contains)
        it = runner.iter + 1
        where = f'iteration {it}'
        epoch = getattr(runner, 'epoch', None)
        # an iteration-based loop's batch_idx is the global iteration and its epoch is 0
        if epoch is not None and not isinstance(getattr(runner, 'train_loop', None),
                                                IterBasedTrainLoop):
            where += f' (epoch {epoch + 1}, batch {batch_idx + 1} of the epoch)'
        if bad:
            found = ', '.join(f'{k}={_format(v)}' for k, v in bad.items())
            what = f'non-finite loss at {where}: {found}'
        else:
            what = f'non-finite loss on another process at {where}'
        message = (
            f'FiniteLossHook: {what}. Training stopped before this iteration was '
            f'checkpointed (work dir: {getattr(runner, "work_dir", "?")}). Check the settings '
            'of the losses named (a temperature, a weight), lower the learning rate or add '
            'gradient clipping (optim_wrapper.clip_grad); resume from the last good '
            'checkpoint with --resume.')
        logger = getattr(runner, 'logger', None)
        if logger is not None:
            logger.error(message)
        raise NonFiniteLossError(message)
