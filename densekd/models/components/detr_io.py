"""Reading mmdet 3.x DETR-family models for DETRDistill: head outputs, decoder inputs.

Supported detectors: ``DeformableDETR`` (incl. box refinement / two-stage), ``DINO``,
``ConditionalDETR``. What the DETRDistill components read:

* the decoder's outputs, from a tap on ``decoder``: ``[hidden (L, B, Q', D), references]``
  (DINO's and Conditional DETR's hidden states are layer-normed). The tap is cloned: DINO's
  ``forward_decoder`` adds to ``hidden[0]`` in place in one case.
* the decoder's keyword inputs (query, query_pos, reference points, memory and its mask,
  spatial shapes, valid ratios, DINO's self-attention mask), which no forward-output tap
  sees: :class:`DecoderInputRecorder`, a forward pre-hook with kwargs owned by a component
  (handle kept, removed by :meth:`DecoderInputRecorder.remove`).
* the head's predictions ``(cls (L, B, Q', C), boxes (L, B, Q', 4))``: mmdet's DETRs call
  ``bbox_head.forward`` directly in ``mode='tensor'`` (no hooks run), so a ``bbox_head`` tap
  records nothing in the teacher's run; :func:`head_predictions` runs the head on the
  tapped decoder outputs instead, once per model and step (cached on the identity of the
  hidden states, shared by the components), so the teacher stops after its decoder.
  In training DINO puts its denoising queries first (``DINO.pre_decoder``:
  ``cat([dn_queries, matching_queries])``; ``DINOHead.split_outputs`` splits at
  ``num_denoising_queries``): :func:`matching` keeps the last ``num_queries``.
"""
from __future__ import annotations

import inspect
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = ['detr_variant', 'matching', 'head_predictions', 'decoder_references',
           'DecoderInputRecorder', 'decoder_call_kwargs', 'recording_paused', 'pixel_boxes',
           'clamp_to_image', 'image_wh', 'layer_selection', 'DECODER_TAP', 'DetrReader',
           'DetrComponentMixin']

DECODER_TAP = 'decoder'

# decoder keyword -> the detector's forward_decoder keyword
_RENAME = {'value': 'memory', 'key': 'memory', 'key_padding_mask': 'memory_mask',
           'key_pos': 'memory_pos', 'self_attn_mask': 'dn_mask'}


def detr_variant(model: nn.Module) -> str:
    """``'dino'``, ``'deformable'`` or ``'conditional'``; raises for other detectors (plain
    DETR and DAB-DETR have other head / decoder signatures)."""
    from mmdet.models.detectors import DINO, ConditionalDETR, DeformableDETR
    if isinstance(model, DINO):
        return 'dino'
    if isinstance(model, DeformableDETR):
        return 'deformable'
    if isinstance(model, ConditionalDETR):
        return 'conditional'
    raise TypeError(f'DETRDistill supports mmdet DETR-family detectors (DeformableDETR, '
                    f'DINO, ConditionalDETR); got {type(model).__name__}')


def matching(x: Tensor, num_queries: int) -> Tensor:
    """The last ``num_queries`` queries of ``(..., Q', K)`` (drops DINO's denoising
    queries; a no-op otherwise)."""
    return x[..., -num_queries:, :]


_HEAD_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def head_predictions(model: nn.Module, decoder_levels: list[Tensor],
                     decoder_kwargs: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """The head's ``(cls, boxes)`` for every decoder layer and query, from the decoder's
    outputs (a ``decoder`` tap) and inputs (:class:`DecoderInputRecorder`).

    The references are assembled as each detector's ``forward_decoder`` does: Deformable
    DETR ``[initial, *per-layer]``, DINO its stacked ``L + 1`` references, Conditional DETR
    its single reference. Computed once per recorded decoder call: the result is cached per
    model on the identity of the hidden-state tensor (the last step's entry is replaced).
    """
    hidden, refs = decoder_levels[0], decoder_levels[1]
    entry = _HEAD_CACHE.get(model)
    if entry is not None and entry[0] is hidden:
        return entry[1]
    initial = decoder_kwargs.get('reference_points')
    if isinstance(initial, Tensor) and initial.dtype != hidden.dtype:
        initial = initial.to(hidden.dtype)  # recorded under autocast; hidden is float32
    references = decoder_references(detr_variant(model), initial, refs)
    out = model.bbox_head(hidden, references)
    _HEAD_CACHE[model] = (hidden, out)
    return out


def decoder_references(variant: str, initial: Tensor | None, refs: Any) -> Any:
    """The head's ``references`` argument, as each detector's ``forward_decoder`` builds it
    from the decoder's reference outputs ``refs``: Deformable DETR ``[initial, *per-layer]``
    (``initial``: the decoder's input reference points), DINO its ``L + 1`` references as a
    list, Conditional DETR its single reference tensor."""
    if variant == 'deformable':
        return [initial, *refs]
    if variant == 'dino':
        return list(refs)
    return refs


def layer_selection(index: list[int], num: int, device: torch.device) -> slice | Tensor:
    """Decoder layers ``index`` (negative counts from the end) of ``num`` as an index: a
    slice when they are consecutive (a view, no index tensor copied to the device), else an
    index tensor."""
    index = [i % num for i in index]
    if index == list(range(index[0], index[0] + len(index))):
        return slice(index[0], index[0] + len(index))
    return torch.tensor(index, device=device)


def image_wh(img_meta: dict, ref: Tensor) -> Tensor:
    """(2,) tensor ``(w, h)`` of an image's ``img_shape``."""
    h, w = img_meta['img_shape'][:2]
    return ref.new_tensor([w, h], dtype=torch.float32)


def clamp_to_image(boxes: Tensor) -> Tensor:
    """Normalised (cx, cy, w, h) boxes clipped to the image: their (x1, y1, x2, y2) corners
    clamped to [0, 1], i.e. to ``[0, w] x [0, h]`` in pixels (what DETRDistill's reference
    does to the teacher's boxes before they are matched and used as targets). (..., 4)."""
    return bbox_xyxy_to_cxcywh(bbox_cxcywh_to_xyxy(boxes).clamp(0, 1))


def pixel_boxes(boxes: Tensor, img_meta: dict) -> Tensor:
    """Normalised (cx, cy, w, h) -> pixel (x1, y1, x2, y2) in ``img_shape``."""
    return bbox_cxcywh_to_xyxy(boxes.float()) * image_wh(img_meta, boxes).repeat(2)


_PAUSED: weakref.WeakSet = weakref.WeakSet()


@contextmanager
def recording_paused(module: nn.Module) -> Iterator[None]:
    """No :class:`DecoderInputRecorder` of ``module`` records inside the block (used while
    a component runs a decoder itself, so no other component's record is overwritten)."""
    _PAUSED.add(module)
    try:
        yield
    finally:
        _PAUSED.discard(module)


class DecoderInputRecorder:
    """Record the keyword inputs of the last call of a model's ``decoder``.

    A forward pre-hook with ``with_kwargs=True``. It keeps references only (no copies) and
    records only while the decoder module is in training mode if ``training_only`` (the
    student: predictions in eval mode are not kept) or always (the teacher, always in eval).

    Args:
        model: the detector.
        training_only: record only calls made in training mode.
    """

    def __init__(self, model: nn.Module, training_only: bool = False) -> None:
        self.module = model.get_submodule(DECODER_TAP)
        self.training_only = training_only
        self.kwargs: dict[str, Any] | None = None
        self._handle: RemovableHandle | None = self.module.register_forward_pre_hook(
            self._hook, with_kwargs=True)

    def _hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if module in _PAUSED or (self.training_only and not module.training):
            return
        if args:
            names = list(inspect.signature(module.forward).parameters)
            kwargs = {**dict(zip(names, args)), **kwargs}
        self.kwargs = dict(kwargs)

    def take(self, owner: str) -> dict[str, Any]:
        """The recorded inputs; raises if nothing was recorded."""
        if self.kwargs is None:
            raise RuntimeError(f'the {owner} decoder inputs were not recorded: its decoder '
                               'did not run in this step')
        return self.kwargs

    def clear(self) -> None:
        """Drop the recorded references."""
        self.kwargs = None

    def remove(self) -> None:
        """Remove the hook (idempotent)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.kwargs = None


def decoder_call_kwargs(model: nn.Module, decoder_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map recorded ``decoder`` kwargs to the detector's ``forward_decoder`` kwargs.

    ``value``/``key`` -> ``memory``, ``key_padding_mask`` -> ``memory_mask``, ``key_pos`` ->
    ``memory_pos``, ``self_attn_mask`` -> ``dn_mask``; names ``forward_decoder`` does not take
    (``reg_branches``, which it passes itself) are dropped.
    """
    params = inspect.signature(model.forward_decoder).parameters
    out = {}
    for key, value in decoder_kwargs.items():
        name = _RENAME.get(key, key)
        if name in params:
            out[name] = value
    return out


class DetrReader:
    """One model's decoder inputs, embeddings and head predictions, for one component.

    Args:
        model: a DETR-family detector.
        training_only: record decoder inputs only in training mode (the student).
    """

    def __init__(self, model: nn.Module, training_only: bool) -> None:
        self.model = model
        self.variant = detr_variant(model)
        self.recorder = DecoderInputRecorder(model, training_only)

    @property
    def num_queries(self) -> int:
        """The model's matching queries."""
        return self.model.num_queries

    def predictions(self, decoder_levels: list[Tensor], owner: str) -> tuple[Tensor, Tensor]:
        """``(cls (L, B, Q, C), boxes (L, B, Q, 4))`` of the matching queries."""
        cls, boxes = head_predictions(self.model, decoder_levels, self.recorder.take(owner))
        return matching(cls, self.num_queries), matching(boxes, self.num_queries)

    def embeddings(self, decoder_levels: list[Tensor]) -> Tensor:
        """(L, B, Q, D) decoder output embeddings of the matching queries."""
        return matching(decoder_levels[0], self.num_queries)

    def clear(self) -> None:
        """Drop the recorded decoder inputs (at the end of a component's step)."""
        self.recorder.clear()

    def remove(self) -> None:
        """Remove the hooks."""
        self.recorder.remove()


class DetrComponentMixin:
    """Readers for both models, made in ``bind`` (call :meth:`_make_readers`), and
    :meth:`remove_hooks`. Both models tap ``decoder`` (cloned, see the module docstring)."""

    _readers: tuple[DetrReader, DetrReader] | None = None
    # the decoder inputs come from the readers' hooks, not from the taps
    taps_only = False

    def _make_readers(self, student: nn.Module, teacher: nn.Module) -> None:
        self.remove_hooks()
        self._readers = (DetrReader(student, training_only=True),
                         DetrReader(teacher, training_only=False))

    @property
    def readers(self) -> tuple[DetrReader, DetrReader]:
        """``(student reader, teacher reader)``."""
        if self._readers is None:
            raise RuntimeError(f'{type(self).__name__}: not bound (or hooks removed)')
        return self._readers

    def remove_hooks(self) -> None:
        """Remove the decoder pre-hooks of both models (idempotent)."""
        if self._readers is not None:
            for reader in self._readers:
                reader.remove()
            self._readers = None
