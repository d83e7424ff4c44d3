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

A fifth, optional variant ``components`` separates the method's own compute from the
framework's: the components' forward, backward and optimiser step on tap outputs recorded
once (student levels as leaf tensors that take gradients, teacher levels as they are). A
method with trainable parts (MGD's generation blocks, FGD's GcBlocks, projectors) cannot
cost less than ``student + teacher + components`` (the method floor); what a step costs
above that is the framework's (taps, copies, teacher beyond need, a second student pass).
Components that change the student's own forward (``student_pass``, e.g. DETRDistill's
query group) or read state their own hooks record (``taps_only`` False: DETRDistill's
decoder inputs) cannot be replayed, and a config with one gets no ``components`` variant.
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

__all__ = ['make_batch', 'step_functions', 'components_step', 'time_interleaved']


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
                   with_loss_mode: bool = False,
                   with_components: bool = False) -> dict[str, Callable[[], Any]]:
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
    if with_components:
        components = components_step(model, data, lr)
        if components is not None:
            fns['components'] = components
    return fns


def components_step(model: BaseModel, data: dict,
                    lr: float = 0.0) -> Callable[[], dict[str, torch.Tensor]] | None:
    """The ``components`` variant (see the module docstring), or None if it cannot be timed.

    Records the taps of one teacher forward and one student forward (losses computed,
    ``no_grad``), then returns a closure that runs every component on those recordings
    (student levels as leaves requiring grad, so the backward into the student's maps is
    counted), backpropagates the sum of their losses and takes an SGD step on the
    components' parameters; it returns the losses (``distill.<name>.<key>``, unweighted).
    None when a component overrides ``student_pass`` (its work
    happens inside the student's forward), reads more than its taps (``taps_only`` False)
    or the model has no components.
    """
    from densekd.models.components.base import DistillComponent
    comps = getattr(model, 'components', None)
    if not comps or any(type(c).student_pass is not DistillComponent.student_pass
                        or not c.taps_only for c in comps.values()):
        return None
    inputs, samples = data['inputs'], data['data_samples']
    model.run_teacher(inputs, samples)
    with torch.no_grad(), model.student_taps.recording():
        model.student.loss(inputs, samples)

    student_rec = {p: [t.detach().clone() for t in model.student_taps.levels(p)]
                   for p in model.student_taps.taps}
    teacher_rec = {p: [t.detach().clone() for t in model.teacher_taps.levels(p)]
                   for p in model.teacher_taps.taps}
    model.student_taps.clear()
    model.teacher_taps.clear()
    params = [p for p in comps.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9) if params else None
    # components may run student modules on the recorded maps (GID reads an FCOS / GFL
    # head's learned scales): their gradients are computed as in a distillation step and
    # dropped every call
    others = [p for p in model.student.parameters() if p.requires_grad]

    def fresh(t: torch.Tensor, grad: bool) -> torch.Tensor:
        # a new tensor object on the same storage each call: components may cache results
        # on a map's identity within one step, as they would in a distillation step
        t = t.detach()
        return t.requires_grad_() if grad and t.is_floating_point() else t

    def components() -> dict[str, torch.Tensor]:
        for p in others:
            p.grad = None
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        student = {p: [fresh(t, True) for t in v] for p, v in student_rec.items()}
        teacher = {p: [fresh(t, False) for t in v] for p, v in teacher_rec.items()}
        losses = {}
        for name, comp in comps.items():
            for key, value in comp(student, teacher, samples).items():
                losses[f'distill.{name}.{key}'] = value
        loss = model.parse_losses(losses)[0]
        if loss.requires_grad:
            loss.backward()
        if opt is not None:
            opt.step()
        return losses

    return components


def time_interleaved(fns: dict[str, Callable[[], Any]], iters: int, warmup: int = 2,
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
        if 'components' in result:
            result['method_floor'] = result['floor'] + result['components']
            result['method_ratio'] = result['distill'] / result['method_floor']
    result['samples'] = {n: v for n, v in times.items()}
    return result
