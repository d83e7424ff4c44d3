"""DistillationModel: one mmengine model holding a student, a frozen teacher and components."""
from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor, nn

from densekd.registry import MODELS
from densekd.utils.checkpoint import load_weights_strict
from densekd.utils.config import load_model_spec

from ..components.base import DistillComponent
from ..taps import StopForward, TapSet
from .teacher_input import build_teacher_input_adapter, preprocessor_config

__all__ = ['DistillationModel', 'init_weights_offline']

TEACHER_PREFIX = 'teacher.'
# loss keys ending in this are stepped by optim_wrapper['discriminator'] (see train_step)
DISCRIMINATOR_LOSS = 'loss_discriminator'


def _drop_teacher_state(module: nn.Module, state_dict: dict, prefix: str,
                        local_metadata: dict) -> None:
    """state_dict post-hook: the frozen teacher is reloaded from its own checkpoint."""
    for key in [k for k in state_dict if k.startswith(prefix + TEACHER_PREFIX)]:
        del state_dict[key]


def _ignore_missing_teacher(module: nn.Module, incompatible_keys) -> None:
    """load_state_dict post-hook: teacher weights are not expected in our checkpoints.

    Keys may carry a wrapper's prefix (``module.teacher.*`` under DDP or EMA), so a key is
    the teacher's when its part after ``teacher.`` names a teacher entry.
    """
    own = set(module.teacher.state_dict())

    def is_teacher(key: str) -> bool:
        head, sep, rest = key.partition(TEACHER_PREFIX)
        return bool(sep) and (head == '' or head.endswith('.')) and rest in own

    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not is_teacher(k)]


def init_weights_offline(model: nn.Module) -> None:
    """``model.init_weights()`` without its ``Pretrained`` init configs (which download).

    For models without a checkpoint (a teacher built only to be timed or tested): every
    parameter gets its module's own initialisation, so none is left as uninitialised memory
    (mmdet's DETRs allocate ``level_embeds`` with ``torch.Tensor(...)`` and fill it only in
    ``init_weights``), and nothing is fetched from the network.
    """
    def pretrained(cfg: Any) -> bool:
        cfgs = cfg if isinstance(cfg, list) else [cfg]
        return any(isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfgs)

    for module in model.modules():
        if pretrained(getattr(module, 'init_cfg', None)):
            module.init_cfg = None
    if hasattr(model, 'init_weights'):
        model.init_weights()


def _float32(levels: list[Tensor]) -> list[Tensor]:
    """The levels with half-precision tensors (fp16, bf16: an autocast forward's outputs)
    cast to float32; the casts keep the student's graph."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in levels]


def _snake(name: str) -> str:
    name = name.rsplit('.', 1)[-1]
    return re.sub(r'(?<!^)(?=[A-Z][a-z])', '_', name).lower()


def _dummy_data_samples(model: nn.Module, height: int, width: int) -> list | None:
    """Minimal data samples with image metas, for the build-time dry run."""
    meta = dict(img_shape=(height, width), ori_shape=(height, width),
                pad_shape=(height, width), batch_input_shape=(height, width),
                scale_factor=(1.0, 1.0), img_id=0)
    try:
        from mmdet.models.detectors import BaseDetector
        from mmdet.structures import DetDataSample
        if isinstance(model, BaseDetector):
            return [DetDataSample(metainfo=meta)]
    except ImportError:  # pragma: no cover - mmdet is a dependency
        pass
    try:
        from mmseg.models.segmentors import BaseSegmentor
        from mmseg.structures import SegDataSample
        if isinstance(model, BaseSegmentor):
            return [SegDataSample(metainfo=meta)]
    except ImportError:  # pragma: no cover
        pass
    return None


@MODELS.register_module()
class DistillationModel(BaseModel):
    """Train a student with losses against a frozen teacher; an mmengine ``BaseModel``.

    Works for any mmdet detector or mmseg segmentor (anything with ``loss``, ``predict``
    and ``mode='tensor'``).

    * The student and the teacher are built from their own, unchanged configs.
    * The batch goes through the student's data preprocessor; if the teacher normalises
      differently, a :class:`TeacherInputAdapter` maps it for the teacher.
    * The teacher is frozen (``requires_grad=False``), kept in eval mode whatever
      ``train()`` is called with, and run under ``no_grad`` in ``mode='tensor'`` -- never
      ``mode='loss'`` -- and only until every teacher tap has recorded (a hook raises
      :class:`StopForward`), so a neck tap skips the teacher's head entirely.
    * A build-time dry run records the tapped shapes; components size their projectors
      from them, and a tap that names no module or records nothing fails here.
    * Teacher weights are left out of this model's checkpoints (they come from
      ``teacher.checkpoint``); everything trainable is saved.
    * Mixed precision (``--amp``: the step's forward under ``torch.autocast``): the models
      run in the autocast dtype; the components get every fp16/bf16 tap level cast once to
      float32 and run with autocast off, so their projectors and losses compute in float32.

    Args:
        student: ``dict(config=... | model=..., checkpoint=None)``; the checkpoint, if given,
            initialises the student (strictly) in ``init_weights``.
        teacher: ``dict(config=... | model=..., checkpoint=...)``.
        components: component configs; each may carry ``name=`` (default: snake-cased
            type), used in log keys ``distill.<name>.loss_*``.
        data_preprocessor: default: the student's own.
        predict_with: ``'student'`` (default) or ``'teacher'`` for ``predict``.
        dry_run_size: (H, W) of the zero image of the dry run.
        teacher_early_exit: stop the teacher once its taps have recorded.
        teacher_inference_mode: run the teacher under ``torch.inference_mode`` instead of
            ``no_grad`` (no version counters or view tracking); the recorded maps are then
            copied once into normal tensors so the losses can use them in autograd.
        teacher_autocast: ``'bf16'`` or ``'fp16'``: run the teacher under ``torch.autocast``
            in that dtype (a GPU speed-up; bf16 also runs on CPU); the recorded maps are cast
            back to float32.
        teacher_channels_last: keep the teacher's weights and input in channels-last memory
            format (faster convolutions on GPUs with tensor cores and some CPUs); recorded
            maps are made contiguous again.
        init_cfg: not supported (raises); use ``student.checkpoint``.
    """

    def __init__(self, student: dict | str, teacher: dict | str,
                 components: Sequence[dict | DistillComponent] = (),
                 data_preprocessor: dict | nn.Module | None = None,
                 predict_with: str = 'student', dry_run_size: Sequence[int] = (128, 128),
                 teacher_early_exit: bool = True, teacher_inference_mode: bool = False,
                 teacher_autocast: str | None = None, teacher_channels_last: bool = False,
                 init_cfg: dict | None = None) -> None:
        if init_cfg is not None:
            raise ValueError('DistillationModel: init_cfg is not applied; initialise the '
                             'student with student.checkpoint=...')
        s_spec = load_model_spec(student, 'student')
        t_spec = load_model_spec(teacher, 'teacher')
        if data_preprocessor is None:
            data_preprocessor = s_spec.data_preprocessor()
        # the normalisation the batch really gets, which the teacher adapter starts from
        student_pre = data_preprocessor if isinstance(data_preprocessor, dict) else \
            s_spec.model.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor)
        self.student = MODELS.build(s_spec.model)
        self.teacher = MODELS.build(t_spec.model)
        self._student_checkpoint = s_spec.checkpoint
        if t_spec.checkpoint:
            load_weights_strict(self.teacher, t_spec.checkpoint)
        else:
            warnings.warn('DistillationModel: the teacher has no checkpoint and keeps its '
                          'random initialisation; set teacher.checkpoint', stacklevel=2)
            # some models hold uninitialised memory until init_weights (DETRs' level_embeds)
            init_weights_offline(self.teacher)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        # the teacher's normalisation: its config's, else what its built preprocessor does
        teacher_pre = t_spec.model.get('data_preprocessor') or \
            preprocessor_config(getattr(self.teacher, 'data_preprocessor', None))
        self.teacher_input = build_teacher_input_adapter(student_pre, teacher_pre)
        if predict_with not in ('student', 'teacher'):
            raise ValueError(f"predict_with must be 'student' or 'teacher', got {predict_with!r}")
        self.predict_with = predict_with
        self.teacher_early_exit = teacher_early_exit
        if teacher_autocast not in (None, 'bf16', 'fp16'):
            raise ValueError(f"teacher_autocast must be None, 'bf16' or 'fp16', got "
                             f'{teacher_autocast!r}')
        self.teacher_autocast = teacher_autocast
        self.teacher_inference_mode = teacher_inference_mode
        self.teacher_channels_last = teacher_channels_last
        if teacher_channels_last:
            self.teacher.to(memory_format=torch.channels_last)
        self.distill_weight = 1.0
        self.components = nn.ModuleDict()
        if isinstance(components, dict) or isinstance(components, (str, bytes)) or \
                not isinstance(components, Sequence):
            kind = 'dict' if isinstance(components, dict) else type(components).__name__
            raise TypeError(f'DistillationModel: components must be a list of component '
                            f'configs; got a {kind} -- wrap it in [...]: '
                            "components=[dict(type='densekd.FeatureMimic', ...)]")
        for i, comp in enumerate(components):
            name = None
            if isinstance(comp, dict):
                comp = dict(comp)
                name = comp.pop('name', None)
                if 'type' not in comp:
                    raise KeyError(f'DistillationModel: components[{i}] has no type; keys: '
                                   f"{sorted(comp)}. Add type='densekd.FeatureMimic' (or "
                                   'another component)')
                name = name or _snake(comp['type'] if isinstance(comp['type'], str)
                                      else comp['type'].__name__)
                try:
                    comp = MODELS.build(comp)
                except KeyError as err:
                    from densekd.registry import unregistered_type_hint
                    hint = unregistered_type_hint(MODELS, comp['type'])
                    if hint is None:  # the type exists: the error is the component's own
                        raise
                    raise KeyError(f'DistillationModel: components[{i}]: {hint}') from err
            elif not isinstance(comp, nn.Module):
                raise TypeError(f'DistillationModel: components[{i}] must be a component '
                                f'config dict or a DistillComponent; got a '
                                f'{type(comp).__name__} ({comp!r:.60})')
            if not isinstance(comp, DistillComponent):
                raise TypeError(
                    f'DistillationModel: components[{i}] is a {type(comp).__name__}, not a '
                    'distillation component (a DistillComponent subclass). A loss goes '
                    "inside a component: dict(type='densekd.FeatureMimic', student=..., "
                    'teacher=..., loss=dict(...))')
            name = name or _snake(type(comp).__name__)
            base, i = name, 1
            while name in self.components:
                name, i = f'{base}_{i}', i + 1
            self.components[name] = comp
        comps = list(self.components.values())
        self.student_taps = TapSet((p for c in comps for p in c.student_taps), 'student',
                                   clone=set().union(*(c.clone_taps['student'] for c in comps)))
        self.teacher_taps = TapSet((p for c in comps for p in c.teacher_taps), 'teacher',
                                   clone=set().union(*(c.clone_taps['teacher'] for c in comps)))
        self.student_taps.attach(self.student)
        self.teacher_taps.attach(self.teacher)
        self._dry_run(tuple(dry_run_size))
        self.register_state_dict_post_hook(_drop_teacher_state)
        self.register_load_state_dict_post_hook(_ignore_missing_teacher)

    # -- build ---------------------------------------------------------------------------
    def _dry_run(self, size: tuple[int, int]) -> None:
        """Run both models once on a zero image; size components; count teacher tap calls."""
        mean = getattr(self.data_preprocessor, 'mean', None)
        channels = 3 if mean is None else mean.numel()
        x = torch.zeros(1, channels, *size)
        shapes = {}
        modes = {m: m.training for m in (self.student, self.teacher)}
        try:
            for name, model, taps in (('student', self.student, self.student_taps),
                                      ('teacher', self.teacher, self.teacher_taps)):
                if not len(taps):
                    shapes[name] = {}
                    continue
                model.eval()
                inputs = x if name == 'student' else self.teacher_inputs(x)
                with torch.no_grad(), taps.recording():
                    model(inputs, _dummy_data_samples(model, *size), mode='tensor')
                taps.check_recorded(f"a dry run of {name}(mode='tensor')")
                shapes[name] = {p: [t.shape for t in taps.levels(p)] for p in taps.taps}
                taps.set_expected_calls()
                taps.clear()
        finally:
            for model, mode in modes.items():
                model.train(mode)
            self.teacher.eval()
        for comp in self.components.values():
            comp.bind(self.student, self.teacher)
            comp.setup(shapes['student'], shapes['teacher'])

    def init_weights(self) -> None:
        """Initialise the student and the components; the teacher keeps its checkpoint."""
        self.student.init_weights()
        if self._student_checkpoint:
            load_weights_strict(self.student, self._student_checkpoint, 'student')
        for comp in self.components.values():
            comp.init_weights()

    def train(self, mode: bool = True) -> DistillationModel:
        """Set train mode everywhere except the teacher, which always stays in eval."""
        super().train(mode)
        self.teacher.eval()
        return self

    # -- training step -------------------------------------------------------------------
    def train_step(self, data: dict | tuple | list,
                   optim_wrapper: OptimWrapper | OptimWrapperDict) -> dict[str, Tensor]:
        """One optimisation step; mmengine's for a plain ``OptimWrapper``.

        With an ``OptimWrapperDict`` ``{'model': ..., 'discriminator': ...}`` (components with
        an adversarial discriminator, e.g. CAKD's multi-view training; build it with
        ``constructor='DiscriminatorOptimWrapperConstructor'``), losses whose key ends in
        ``loss_discriminator`` are stepped by the ``'discriminator'`` wrapper and all other
        losses by the ``'model'`` wrapper (:meth:`update_from_losses`). Under DDP the same
        happens in :class:`DistillDistributedDataParallel`.
        """
        context_wrapper = optim_wrapper['model'] if isinstance(
            optim_wrapper, OptimWrapperDict) else optim_wrapper
        with context_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        return self.update_from_losses(losses, optim_wrapper)

    def update_from_losses(self, losses: dict[str, Tensor],
                           optim_wrapper: OptimWrapper | OptimWrapperDict,
                           distributed: bool = False) -> dict[str, Tensor]:
        """Backward and optimiser steps for the losses of one forward; the log variables.

        With an ``OptimWrapperDict``: the discriminator losses (``*loss_discriminator``)
        see detached features only and the student's adversarial losses use frozen copies
        of the discriminator (taken at the forward), so the two loss sets reach disjoint
        parameters and one backward of their sum gives each exactly its own gradients; then
        the ``'discriminator'`` and the ``'model'`` wrappers step (both use the
        discriminator as it was at the forward: a simultaneous-gradient GAN step). One
        backward per forward is also what DDP needs. Wrappers with a loss scaler (AMP) scale
        their own loss, so they get one backward each (not under DDP).
        """
        disc = {k: v for k, v in losses.items() if k.endswith(DISCRIMINATOR_LOSS)}
        if not isinstance(optim_wrapper, OptimWrapperDict):
            if disc:
                raise ValueError(f'DistillationModel: {sorted(disc)} need their own optimiser; '
                                 "use optim_wrapper=dict(constructor='DiscriminatorOptim"
                                 "WrapperConstructor', model=dict(...), discriminator=dict(...))")
            parsed, log_vars = self.parse_losses(losses)
            optim_wrapper.update_params(parsed)
            return log_vars
        model_wrapper = optim_wrapper['model']
        parsed, log_vars = self.parse_losses(
            {k: v for k, v in losses.items() if k not in disc})
        if not disc:
            model_wrapper.update_params(parsed)
            return log_vars
        disc_wrapper = optim_wrapper['discriminator']
        disc_total, disc_vars = self.parse_losses(disc)
        log_vars.update({k: v for k, v in disc_vars.items() if k != 'loss'})
        if any(hasattr(w, 'loss_scaler') for w in (model_wrapper, disc_wrapper)):
            if distributed:
                raise NotImplementedError(
                    'DistillationModel: a discriminator optimiser under DDP needs plain '
                    "OptimWrapper's (no AMP loss scaler) for 'model' and 'discriminator'")
            disc_wrapper.update_params(disc_total)
            model_wrapper.update_params(parsed)
            return log_vars
        total = model_wrapper.scale_loss(parsed) + disc_wrapper.scale_loss(disc_total)
        model_wrapper.backward(total)
        disc_wrapper._inner_count += 1   # its share of the backward (OptimWrapper.backward)
        for wrapper in (disc_wrapper, model_wrapper):
            if wrapper.should_update():
                wrapper.step()
                wrapper.zero_grad()
        return log_vars

    # -- forward -------------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples: list | None = None,
                mode: str = 'tensor') -> Any:
        """mmengine's entry point: ``loss``, ``predict`` or ``tensor`` (student)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student(inputs, data_samples, mode='tensor')
        raise ValueError(f'invalid mode {mode!r}; use loss, predict or tensor')

    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        """The batch as the teacher's preprocessor would have made it."""
        return inputs if self.teacher_input is None else self.teacher_input(inputs)

    def run_teacher(self, inputs: Tensor, data_samples: list | None) -> None:
        """Run the teacher under no_grad until every teacher tap has recorded."""
        if not len(self.teacher_taps):
            return
        grad_off = torch.inference_mode() if self.teacher_inference_mode else torch.no_grad()
        autocast = contextlib.nullcontext()
        if self.teacher_autocast is not None:
            dtype = torch.bfloat16 if self.teacher_autocast == 'bf16' else torch.float16
            autocast = torch.autocast(inputs.device.type, dtype=dtype)
        with grad_off, autocast, self.teacher_taps.recording(self.teacher_early_exit):
            x = self.teacher_inputs(inputs)
            if self.teacher_channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            try:
                self.teacher(x, data_samples, mode='tensor')
            except StopForward:
                pass
        if self.teacher_inference_mode or self.teacher_autocast or self.teacher_channels_last:
            # inference tensors cannot be saved for backward: one copy into normal tensors
            copy = self.teacher_inference_mode
            self.teacher_taps.convert(lambda t: t.to(
                dtype=torch.float32 if t.is_floating_point() else t.dtype,
                memory_format=torch.contiguous_format, copy=copy))

    def loss(self, inputs: Tensor, data_samples: list) -> dict[str, Tensor]:
        """The student's own losses plus ``distill.<component>.loss_*``."""
        weight = float(self.distill_weight)
        if weight > 0:
            self.run_teacher(inputs, data_samples)
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.student_taps.recording())
            if weight > 0:
                for comp in self.components.values():
                    stack.enter_context(comp.student_pass())
            losses = dict(self.student.loss(inputs, data_samples))
        if weight > 0:
            student = {p: _float32(self.student_taps.levels(p)) for p in self.student_taps.taps}
            teacher = {p: _float32(self.teacher_taps.levels(p)) for p in self.teacher_taps.taps}
            # the components compute in float32 whatever precision the models ran in
            with torch.autocast(inputs.device.type, enabled=False):
                for name, comp in self.components.items():
                    for key, value in comp(student, teacher, data_samples).items():
                        losses[f'distill.{name}.{key}'] = value * weight if weight != 1 \
                            else value
        else:
            params = [p.sum() for p in self.components.parameters() if p.requires_grad]
            if params:  # keeps every trainable parameter in the graph for DDP
                losses['distill.loss_off'] = torch.stack(params).sum() * 0
        self.student_taps.clear()
        self.teacher_taps.clear()
        return losses

    def predict(self, inputs: Tensor, data_samples: list | None = None) -> list:
        """Predictions of the student (or of the teacher, if ``predict_with='teacher'``)."""
        if self.predict_with == 'teacher':
            return self.teacher.predict(self.teacher_inputs(inputs), data_samples)
        return self.student.predict(inputs, data_samples)
