"""DETRQueryPriorDistill: DETRDistill's query-prior assignment distillation."""
from __future__ import annotations

import contextlib
import math
import types
import weakref
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import torch
from mmdet.models.layers.transformer.utils import ConditionalAttention
from mmdet.models.losses import QualityFocalLoss
from mmdet.structures.bbox import (
    bbox_cxcywh_to_xyxy,
    bbox_overlaps,
    bbox_xyxy_to_cxcywh,
    get_box_tensor,
)
from mmdet.utils import reduce_mean
from mmengine.structures import InstanceData
from torch import Tensor, nn

from densekd.registry import MODELS

from .base import DistillComponent, TapLevels
from .detr_io import (
    DECODER_TAP,
    DetrComponentMixin,
    decoder_call_kwargs,
    decoder_references,
    detr_variant,
    image_wh,
    pixel_boxes,
    recording_paused,
)

__all__ = ['DETRQueryPriorDistill']

# the query-like inputs of a decoder layer's self-attention (mmcv's MultiheadAttention,
# mmdet's ConditionalAttention), (B, Q, D) with batch_first
_QUERY_ARGS = ('query', 'key', 'value', 'identity', 'query_pos', 'key_pos')


def _batch_first(attn: nn.Module) -> bool:
    """Whether a self-attention module takes (B, Q, D) inputs (mmdet's
    ``ConditionalAttention`` always does and has no ``batch_first`` attribute)."""
    return isinstance(attn, ConditionalAttention) or bool(getattr(attn, 'batch_first', False))


def _split_self_attention(own: int, own_mask: Tensor | None, forward: Callable[..., Tensor],
                          *args: Any, **kwargs: Any) -> Tensor:
    """A decoder layer's self-attention over the merged queries as two attention calls:
    the student's ``own`` queries with their own mask (``own_mask``: DINO's denoising mask,
    else ``None``, as the plain student call) and the group with none.

    The same outputs as one call with the block mask that :meth:`merge_group` builds (a
    blocked key gets weight 0 in the softmax; the mask arriving as ``attn_mask`` is that
    one and is not needed), at half the attention work, and without the slow masked path
    for the student's own queries when they have no mask.

    ``forward`` is the module's forward as it was (an instance wrapper such as mmengine's
    activation checkpointing, or the class's). Only the query-like keyword inputs
    (``_QUERY_ARGS``) are split; mmdet 3's decoder layers pass no other per-query input to
    their self-attention.
    """
    if args:
        raise TypeError('DETRQueryPriorDistill: the decoder self-attention was called with '
                        'positional arguments; mmdet calls it with keywords')
    outs = []
    for part, mask in ((slice(None, own), own_mask), (slice(own, None), None)):
        call = dict(kwargs, attn_mask=mask)
        for name in _QUERY_ARGS:
            if isinstance(call.get(name), Tensor):
                call[name] = call[name][:, part]
        outs.append(forward(**call))
    return torch.cat(outs, dim=1)


def _float32(x: Any) -> Any:
    """``x`` in float32 if it is a half-precision tensor (or a list of them), else as is."""
    if isinstance(x, (list, tuple)):
        return type(x)(_float32(t) for t in x)
    if isinstance(x, Tensor) and x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


@MODELS.register_module()
class DETRQueryPriorDistill(DetrComponentMixin, DistillComponent):
    """Query-prior assignment distillation (DETRDistill, ICCV 2023).

    The teacher's decoder queries -- content query, positional query and initial reference
    points as its decoder received them (DINO: content query + its selected anchor boxes;
    Conditional DETR: the positional query, the content query being zero) -- are run through
    the student's decoder (``forward_decoder``, so each variant's own reference handling
    applies) as an extra group on the student's encoder memory from the same step, and the
    student head predicts boxes for them. The group is supervised with the student head's
    own ``loss_cls`` / ``loss_bbox`` / ``loss_iou`` (and weights) against the GT, on every
    decoder layer (summed), using the **teacher's** assignment of those queries: the
    teacher's last-layer predictions matched to the GT by the teacher head's assigner. (The
    reference code computes that assignment but then re-matches with the student's own
    Hungarian assignment; we follow the paper.) An image without GT gives all-background
    targets.

    The group exists only inside this component's forward (in ``loss``): the student's
    normal forward and predictions are unchanged. Where the widths differ, the teacher's
    queries go through trainable ``Linear`` layers (one for the content, one for the
    positional query). Student and teacher must be the same DETR variant with the same kind
    of reference points.

    Inputs come from forward pre-hooks on both ``decoder`` modules
    (:class:`DecoderInputRecorder`, removed by :meth:`remove_hooks`) and the teacher's
    ``decoder`` tap (its predictions via :func:`head_predictions`).

    **One decoder pass** (``one_pass=True``): the group rides along in the student's own
    decoder call, appended to its queries; each layer's self-attention runs the two groups
    as two attention calls (``split_self_attn``; DINO's denoising mask stays with the
    student's queries) or, with ``split_self_attn=False``, as one call with a block mask
    (Conditional DETR: given to its decoder layers by pre-hooks during the call, its
    decoder takes none), so
    the decoder's per-layer work on the encoder memory (deformable attention's value
    projection, Conditional DETR's key projections) is done once. The student decoder's
    ``forward`` is wrapped (an instance attribute, removed by :meth:`remove_hooks`); hooks
    and taps around it see the student's own inputs and outputs only, the group's outputs
    are split off inside. It merges only inside a distillation step's student forward
    (:meth:`student_pass`), in training with gradients enabled and when the teacher's
    decoder inputs of the step were recorded; otherwise, and with
    ``one_pass=False``, the group runs as a second ``forward_decoder`` call. Both give the
    same group outputs, and the student's own outputs are unchanged (tested without
    dropout; with dropout its random masks are drawn for the merged tensors).

    Args:
        one_pass: run the group inside the student's decoder call.
        split_self_attn: in the one-pass call, run each decoder layer's self-attention as
            two calls, the student's queries and the group (same values as the block mask;
            half the attention work). Needs ``batch_first`` attention modules (mmdet 3's
            DETRs); otherwise the block mask is used.
        init_cfg: mmengine init config.
    """

    def __init__(self, one_pass: bool = True, split_self_attn: bool = True,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.teacher_taps = [DECODER_TAP]
        self.clone_taps = {'student': set(), 'teacher': {DECODER_TAP}}
        self.query_proj: nn.Module = nn.Identity()
        self.pos_proj: nn.Module = nn.Identity()
        self.one_pass = one_pass
        self.split_self_attn = split_self_attn
        self._wrapped: weakref.ref | None = None    # not a submodule
        self._group_out: tuple[Tensor, Tensor, Tensor | None] | None = None
        self._armed = False  # inside a distillation step's student forward (student_pass)

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check the variants, build the projections, hook both decoders."""
        super().bind(student, teacher)
        self.variant = detr_variant(student)
        if detr_variant(teacher) != self.variant:
            raise ValueError(f'DETRQueryPriorDistill: the teacher ({type(teacher).__name__}) '
                             f'and student ({type(student).__name__}) must be the same '
                             'DETR variant')
        if not hasattr(teacher.bbox_head, 'assigner'):
            raise ValueError('DETRQueryPriorDistill: the teacher head has no assigner; give '
                             'the teacher config its train_cfg')
        s_dim, t_dim = student.embed_dims, teacher.embed_dims
        if s_dim != t_dim:
            self.query_proj = nn.Linear(t_dim, s_dim)
            self.pos_proj = nn.Linear(t_dim, s_dim)
        self._make_readers(student, teacher)
        if self.one_pass:
            self._wrap_decoder(student.get_submodule(DECODER_TAP))

    @contextlib.contextmanager
    def student_pass(self) -> Iterator[None]:
        """Arm the one-pass group for the student forward of a distillation step only: a
        student forward elsewhere (its own ``loss``, after a teacher forward that no
        distillation step consumed) must not carry a group."""
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def _wrap_decoder(self, decoder: nn.Module) -> None:
        """Make the student decoder's ``forward`` carry the group (see the class doc)."""
        self._unwrap_decoder()
        comp = weakref.ref(self)

        def grouped_forward(module: nn.Module, *args: Any, **kwargs: Any) -> Any:
            forward = type(module).forward
            this = comp()
            t_rec = None if this is None or this._readers is None else this.readers[1].recorder
            if (args or t_rec is None or t_rec.kwargs is None or not module.training
                    or not torch.is_grad_enabled() or not this._armed):
                if this is not None:
                    this._group_out = None
                return forward(module, *args, **kwargs)
            merged, own, t_ref = this.merge_group(kwargs, t_rec.kwargs)
            handles = []
            attns = [layer.self_attn for layer in module.layers]
            split = this.split_self_attn and all(map(_batch_first, attns))
            # instance forwards already there (e.g. activation checkpointing) are kept
            previous = [attn.__dict__.get('forward') for attn in attns]
            try:
                if split:   # each group's self-attention on its own (the mask's blocks)
                    own_mask = kwargs.get('self_attn_mask')
                    for attn, prev in zip(attns, previous):
                        plain = prev if prev is not None else partial(type(attn).forward, attn)
                        attn.forward = partial(_split_self_attention, own, own_mask, plain)
                if this.variant == 'conditional':
                    # mmdet's Conditional DETR decoder takes no self-attention mask; its
                    # layers do
                    mask = merged.pop('self_attn_mask')
                    if not split:
                        handles = [layer.register_forward_pre_hook(
                            lambda m, a, k: (a, {**k, 'self_attn_masks': mask}),
                            with_kwargs=True) for layer in module.layers]
                hidden, refs = forward(module, **merged)
            finally:
                for handle in handles:
                    handle.remove()
                if split:
                    for attn, prev in zip(attns, previous):
                        if prev is None:
                            attn.__dict__.pop('forward', None)
                        else:
                            attn.forward = prev
            this._group_out = (hidden[..., own:, :], refs[..., own:, :], t_ref)
            return hidden[..., :own, :], refs[..., :own, :]

        # a bound method: a deep copy of the model rebinds it to the copied decoder
        decoder.forward = types.MethodType(grouped_forward, decoder)
        self._wrapped = weakref.ref(decoder)

    def _unwrap_decoder(self) -> None:
        decoder = None if self._wrapped is None else self._wrapped()
        if decoder is not None:
            decoder.__dict__.pop('forward', None)
        self._wrapped = None

    def remove_hooks(self) -> None:
        """Remove the decoder pre-hooks of both models and the student decoder's wrapper
        (idempotent)."""
        self._unwrap_decoder()
        super().remove_hooks()

    def _teacher_queries(self, t_kwargs: dict[str, Any]) -> dict[str, Tensor]:
        # the teacher may run in inference mode or under autocast: plain float32 copies
        return {k: v.to(torch.float32, copy=v.is_inference())
                if isinstance(v, Tensor) and v.is_floating_point() else v
                for k, v in t_kwargs.items()
                if k in ('query', 'query_pos', 'reference_points')}

    def _check_refs(self, s_ref: Tensor, t_ref: Tensor) -> None:
        if s_ref.shape[-1] != t_ref.shape[-1]:
            raise ValueError(f'DETRQueryPriorDistill: teacher reference points have '
                             f'{t_ref.shape[-1]} coordinates, the student expects '
                             f'{s_ref.shape[-1]} (two-stage vs one-stage)')

    def merge_group(self, s_kwargs: dict[str, Any], t_kwargs: dict[str, Any],
                    ) -> tuple[dict[str, Any], int, Tensor | None]:
        """The student's decoder kwargs with the group appended.

        Returns:
            ``(kwargs, number of the student's own queries, the group's reference points)``
            (Conditional DETR: no reference points in, ``None``). ``self_attn_mask``
            (True = blocked) keeps each group to itself; the student's own block is its
            original mask (DINO's denoising mask) or all-open.
        """
        t = self._teacher_queries(t_kwargs)
        own = s_kwargs['query'].shape[1]
        merged = dict(s_kwargs)
        if self.variant == 'conditional':   # positional queries only, zero content
            t_pos = self.pos_proj(t['query_pos'])
            merged['query_pos'] = torch.cat([s_kwargs['query_pos'], t_pos], 1)
            merged['query'] = torch.cat([s_kwargs['query'], torch.zeros_like(t_pos)], 1)
            t_ref = None
        else:
            self._check_refs(s_kwargs['reference_points'], t['reference_points'])
            merged['query'] = torch.cat([s_kwargs['query'], self.query_proj(t['query'])], 1)
            if s_kwargs.get('query_pos') is not None:
                merged['query_pos'] = torch.cat([s_kwargs['query_pos'],
                                                 self.pos_proj(t['query_pos'])], 1)
            t_ref = t['reference_points']
            merged['reference_points'] = torch.cat([s_kwargs['reference_points'], t_ref], 1)
        total = merged['query'].shape[1]
        mask = torch.ones(total, total, dtype=torch.bool, device=merged['query'].device)
        mask[own:, own:] = False
        own_mask = s_kwargs.get('self_attn_mask')
        mask[:own, :own] = False if own_mask is None else own_mask
        merged['self_attn_mask'] = mask
        return merged, own, t_ref

    def group_inputs(self, s_kwargs: dict[str, Any], t_kwargs: dict[str, Any]) -> dict:
        """``forward_decoder`` kwargs of the group: the student's memory, masks and level
        geometry with the teacher's (projected) queries and reference points."""
        call = decoder_call_kwargs(self.student_model, s_kwargs)
        t_kwargs = self._teacher_queries(t_kwargs)
        if self.variant == 'conditional':
            call['query_pos'] = self.pos_proj(t_kwargs['query_pos'])
            call['query'] = torch.zeros_like(call['query_pos'])
            return call
        call['query'] = self.query_proj(t_kwargs['query'])
        if t_kwargs.get('query_pos') is not None:
            call['query_pos'] = self.pos_proj(t_kwargs['query_pos'])
        t_ref = t_kwargs['reference_points']
        self._check_refs(s_kwargs['reference_points'], t_ref)
        call['reference_points'] = t_ref
        if 'dn_mask' in call:
            call['dn_mask'] = None  # the group runs alone: no denoising queries to mask
        return call

    @torch.no_grad()
    def teacher_targets(self, t_cls: Tensor, t_box: Tensor,
                        data_samples: list[Any]) -> tuple[Tensor, ...]:
        """The teacher's assignment of its queries to GT, as training targets.

        The teacher head's assigner runs per image (mmdet's); the targets are then written
        with masks (no boolean indexing).

        Args:
            t_cls, t_box: (B, Q, C) logits and (B, Q, 4) boxes of the teacher's last layer.

        Returns:
            ``labels (B*Q,)`` (``num_classes`` = background), ``bbox_targets (B*Q, 4)``
            normalised cxcywh, ``bbox_weights (B*Q, 4)``, number of positives (0-d tensor).
        """
        assigner = self.teacher_model.bbox_head.assigner
        num_classes = self.student_model.bbox_head.num_classes
        labels, targets = [], []
        for b, ds in enumerate(data_samples):
            meta, gt = ds.metainfo, ds.gt_instances
            gt_boxes = get_box_tensor(gt.bboxes).to(t_box.device).float()
            gt_labels = gt.labels.to(t_box.device)
            if len(gt_boxes) == 0:
                labels.append(gt_labels.new_full((t_box.shape[1],), num_classes))
                targets.append(t_box.new_zeros(t_box.shape[1], 4))
                continue
            pred = InstanceData(scores=t_cls[b], bboxes=pixel_boxes(t_box[b], meta))
            gt_inst = InstanceData(bboxes=gt_boxes, labels=gt_labels)
            gt_inds = assigner.assign(pred_instances=pred, gt_instances=gt_inst,
                                      img_meta=meta).gt_inds
            matched = (gt_inds - 1).clamp(min=0)
            pos = gt_inds > 0
            labels.append(torch.where(pos, gt_labels[matched], num_classes))
            factor = image_wh(meta, t_box).repeat(2)
            targets.append(torch.where(pos[:, None],
                                       bbox_xyxy_to_cxcywh(gt_boxes[matched] / factor), 0.0))
        labels, targets = torch.cat(labels), torch.cat(targets)
        pos = labels < num_classes
        return labels, targets, pos[:, None].expand(-1, 4).to(targets.dtype), pos.sum()

    def layer_loss(self, cls: Tensor, boxes: Tensor, labels: Tensor, bbox_targets: Tensor,
                   bbox_weights: Tensor, num_pos: int | Tensor,
                   img_metas: list[dict]) -> tuple[Tensor, Tensor, Tensor]:
        """The student head's losses with fixed targets; mirrors mmdet's
        ``DETRHead.loss_by_feat_single`` (avg factors, pixel GIoU, QFL's IoU targets).

        ``cls`` (..., B, Q, C) and ``boxes`` (..., B, Q, 4) may carry leading decoder-layer
        dims: every layer has the same targets and avg factors, so the sum over layers of
        each layer's losses is one call on all their rows. The avg factors stay tensors (no
        host read)."""
        head = self.student_model.bbox_head
        num_layers = math.prod(cls.shape[:-3])
        num_total = labels.numel()
        cls = cls.reshape(-1, head.cls_out_channels)
        boxes = boxes.reshape(-1, 4)
        labels = labels.repeat(num_layers)
        bbox_targets = bbox_targets.repeat(num_layers, 1)
        bbox_weights = bbox_weights.repeat(num_layers, 1)
        num_pos = torch.as_tensor(num_pos, dtype=cls.dtype, device=cls.device)
        cls_avg = num_pos + (num_total - num_pos) * head.bg_cls_weight
        if head.sync_cls_avg_factor:
            cls_avg = reduce_mean(cls_avg)
        cls_avg = cls_avg.clamp(min=1)
        label_weights = torch.ones_like(labels, dtype=cls.dtype)
        wh = cls.new_tensor([m['img_shape'][:2] for m in img_metas]).flip(-1)
        q = num_total // len(img_metas)
        factors = torch.cat([wh, wh], -1).repeat_interleave(q, 0).repeat(num_layers, 1)
        pred_px = bbox_cxcywh_to_xyxy(boxes) * factors
        gt_px = bbox_cxcywh_to_xyxy(bbox_targets) * factors
        if isinstance(head.loss_cls, QualityFocalLoss):
            iou = bbox_overlaps(pred_px.detach(), gt_px, is_aligned=True)
            scores = torch.where(labels < head.num_classes, iou, 0.0)
            loss_cls = head.loss_cls(cls, (labels, scores), label_weights, avg_factor=cls_avg)
        else:
            loss_cls = head.loss_cls(cls, labels, label_weights, avg_factor=cls_avg)
        num_pos_avg = reduce_mean(num_pos).clamp(min=1)
        loss_iou = head.loss_iou(pred_px, gt_px, bbox_weights, avg_factor=num_pos_avg)
        loss_bbox = head.loss_bbox(boxes, bbox_targets, bbox_weights, avg_factor=num_pos_avg)
        return loss_cls, loss_bbox, loss_iou

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_cls``, ``loss_bbox``, ``loss_iou`` of the teacher-query group, summed over
        the student's decoder layers."""
        if data_samples is None:
            raise ValueError('DETRQueryPriorDistill needs the data samples (ground truth)')
        s_reader, t_reader = self.readers
        s_rec, t_rec = s_reader.recorder, t_reader.recorder
        with torch.no_grad():
            t_cls, t_box = t_reader.predictions(teacher[DECODER_TAP], 'teacher')
        try:
            if self._group_out is not None:      # carried by the student's decoder call
                # made in the student's forward, maybe under autocast: float32 from here
                hidden, refs, t_ref = (_float32(x) for x in self._group_out)
                references = decoder_references(self.variant, t_ref, refs)
            else:
                call = {k: _float32(v) for k, v in
                        self.group_inputs(s_rec.take('student'), t_rec.take('teacher')).items()}
                with recording_paused(s_reader.recorder.module):
                    out = self.student_model.forward_decoder(**call)
                hidden, references = out['hidden_states'], out['references']
            cls, boxes = self.student_model.bbox_head(hidden, references)
        finally:
            self._group_out = None
            s_rec.clear()
            t_rec.clear()
        targets = self.teacher_targets(t_cls[-1], t_box[-1], data_samples)
        loss_cls, loss_bbox, loss_iou = self.layer_loss(
            cls, boxes, *targets, [ds.metainfo for ds in data_samples])
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_iou=loss_iou)
