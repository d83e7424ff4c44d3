"""Cost of a distillation step against its floor: student step + teacher forward.

Three variants run on the same preprocessed batch, interleaved in a random order each
round so machine noise hits them alike:

* ``student``: the student's own training step (forward with loss, backward, SGD step);
* ``teacher``: the teacher's forward as the components need it (``run_teacher``);
* ``distill``: the full distillation step (``DistillationModel.loss``, backward, step).

The floor is ``student + teacher``; ``ratio = distill / floor`` is the overhead (taps,
projectors, losses, anything the teacher runs beyond need). A fourth, optional variant
``teacher_loss_mode`` times the teacher the way a generic distiller runs it
(``mode='loss'``, under ``no_grad``) for comparison.
"""
from __future__ import annotations

import random
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from mmengine.model import BaseModel

__all__ = ['make_batch', 'step_functions', 'time_interleaved']


def make_batch(model: BaseModel, batch_size: int, size: int, seed: int = 0) -> dict:
    """A synthetic training batch for the student of ``model`` (detector or segmentor)."""
    student = model.student
    g = torch.Generator().manual_seed(seed)
    from mmdet.models.detectors import BaseDetector

    if isinstance(student, BaseDetector):
        from mmdet.testing import demo_mm_inputs

        num_classes = _num_classes(student)
        return demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, size, size)] * batch_size,
                              num_items=[5] * batch_size, num_classes=num_classes)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    num_classes = student.decode_head.num_classes
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=torch.randint(
            0, num_classes, (1, size, size), generator=g, dtype=torch.int64))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _num_classes(detector: torch.nn.Module) -> int:
    """Object classes: the RoI head's (two-stage; the RPN has one) or the dense head's."""
    roi = getattr(detector, 'roi_head', None)
    for head in (getattr(roi, 'bbox_head', None), getattr(detector, 'bbox_head', None)):
        n = getattr(head, 'num_classes', None)
        if n:
            return n
    return 80


def step_functions(model: BaseModel, data: dict, lr: float = 0.0,
                   with_loss_mode: bool = False) -> dict[str, Callable[[], None]]:
    """Closures for the variants on one preprocessed batch (see the module docstring).

    The SGD steps use ``lr=0`` by default: every step does the same arithmetic as a real
    one (momentum buffers, parameter update), but the random weights stay put, so a long
    timing run on one batch without the configs' gradient clipping cannot drift.
    """
    inputs, samples = data['inputs'], data['data_samples']
    student_params = [p for p in model.student.parameters() if p.requires_grad]
    all_params = [p for p in model.parameters() if p.requires_grad]
    opt_s = torch.optim.SGD(student_params, lr=lr, momentum=0.9)
    opt_d = torch.optim.SGD(all_params, lr=lr, momentum=0.9)

    def total(losses: dict) -> torch.Tensor:
        return model.parse_losses(losses)[0]

    def student() -> None:
        opt_s.zero_grad(set_to_none=True)
        total(model.student.loss(inputs, samples)).backward()
        opt_s.step()

    def teacher() -> None:
        model.run_teacher(inputs, samples)
        model.teacher_taps.clear()

    def distill() -> None:
        opt_d.zero_grad(set_to_none=True)
        total(model.loss(inputs, samples)).backward()
        opt_d.step()

    fns = dict(student=student, teacher=teacher, distill=distill)
    if with_loss_mode:
        def teacher_loss_mode() -> None:
            with torch.no_grad():
                model.teacher(model.teacher_inputs(inputs), samples, mode='loss')

        try:
            teacher_loss_mode()
        except (TypeError, RuntimeError, KeyError, ValueError) as e:
            # e.g. mmdet 3.3's DETR heads cannot compute losses in eval mode
            warnings.warn(f'teacher in loss mode not timed: {type(e).__name__}: {e}',
                          stacklevel=2)
        else:
            fns['teacher_loss_mode'] = teacher_loss_mode
    return fns


def time_interleaved(fns: dict[str, Callable[[], None]], iters: int, warmup: int = 2,
                     seed: int = 0, sync: Callable[[], None] | None = None) -> dict[str, Any]:
    """Median seconds per call of each function, run in a shuffled order every round."""
    rng = random.Random(seed)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for it in range(warmup + iters):
        rng.shuffle(names)
        for name in names:
            if sync:
                sync()
            start = time.perf_counter()
            fns[name]()
            if sync:
                sync()
            if it >= warmup:
                times[name].append(time.perf_counter() - start)
    result: dict[str, Any] = {n: statistics.median(v) for n, v in times.items()}
    if {'student', 'teacher', 'distill'} <= set(result):
        result['floor'] = result['student'] + result['teacher']
        result['ratio'] = result['distill'] / result['floor']
    result['samples'] = {n: v for n, v in times.items()}
    return result
