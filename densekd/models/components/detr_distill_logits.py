"""DETRLogitsDistill: DETRDistill's Hungarian-matching logits distillation."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from densekd.registry import MODELS, TASK_UTILS

from ..losses.detr_distill import HungarianDistillLoss
from ..matchers import HungarianMatcher
from .base import DistillComponent, TapLevels
from .detr_io import DECODER_TAP, DetrComponentMixin, clamp_to_image, layer_selection

__all__ = ['DETRLogitsDistill', 'layer_pairs']


def layer_pairs(num_student: int, num_teacher: int,
                mapping: str | Sequence[Sequence[int]] = 'last') -> list[tuple[int, int]]:
    """(student layer, teacher layer) pairs for layer-by-layer distillation.

    ``'last'``: the last ``min(Ls, Lt)`` layers aligned from the end, i.e. student layer
    ``Ls - k`` with teacher layer ``Lt - k`` for k = 1..min (equal counts: layer i with layer
    i, as the reference; a deeper student leaves its first layers without a teacher).
    ``'final'``: only the two last layers. A list of pairs is used as given.
    """
    if mapping == 'last':
        n = min(num_student, num_teacher)
        return [(num_student - n + i, num_teacher - n + i) for i in range(n)]
    if mapping == 'final':
        return [(num_student - 1, num_teacher - 1)]
    if isinstance(mapping, str):
        raise ValueError(f"layer mapping must be 'last', 'final' or a list of pairs, "
                         f'got {mapping!r}')
    pairs = [(int(s), int(t)) for s, t in mapping]
    for s, t in pairs:
        if not (-num_student <= s < num_student and -num_teacher <= t < num_teacher):
            raise ValueError(f'layer pair {(s, t)} out of range for {num_student} student / '
                             f'{num_teacher} teacher decoder layers')
    return pairs


@MODELS.register_module()
class DETRLogitsDistill(DetrComponentMixin, DistillComponent):
    """Hungarian-matching logits distillation (DETRDistill, ICCV 2023).

    Per decoder-layer pair (:func:`layer_pairs`) and image, the student's matching queries
    are matched one-to-one to the teacher's predictions (all of them, with their full
    sigmoid score vectors) by :class:`HungarianMatcher` (soft-BCE x1, L1 x5, GIoU x2; with
    different query counts ``min(Qs, Qt)`` pairs), then :class:`HungarianDistillLoss`
    (logits 1, L1 5, GIoU 2; teacher-confidence weighting by default, ``weighting=None`` for
    the reference code's plain mean). Losses are summed over layer pairs, as the reference's
    per-layer terms are. The student's own GT losses are untouched.

    Reads both models' ``decoder`` taps and the head predictions made from them
    (:func:`head_predictions`, shared with the other DETRDistill components); DINO's
    denoising queries are dropped. Student and teacher may be different DETR
    variants but must predict the same classes. The teacher's boxes are clipped to the
    image before they are matched and used as targets (``clamp_teacher_boxes``, as the
    reference's ``_get_teacher_bboxes_distill_single``); the student's are not.

    Example::

        dict(type='densekd.DETRLogitsDistill', name='logits',
             loss=dict(type='densekd.HungarianDistillLoss', weighting='teacher_score'))

    Args:
        matcher: :class:`HungarianMatcher` or its config; default the paper's costs.
        loss: :class:`HungarianDistillLoss` or its config.
        layers: layer mapping (:func:`layer_pairs`): ``'last'``, ``'final'`` or pairs.
        clamp_teacher_boxes: clip the teacher's boxes to the image (:func:`clamp_to_image`)
            before matching and as targets (reference behaviour).
        init_cfg: mmengine init config.
    """

    def __init__(self, matcher: dict | HungarianMatcher | None = None,
                 loss: dict | nn.Module | None = None,
                 layers: str | Sequence[Sequence[int]] = 'last',
                 clamp_teacher_boxes: bool = True,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_taps = [DECODER_TAP]
        self.teacher_taps = [DECODER_TAP]
        self.clone_taps = {'student': {DECODER_TAP}, 'teacher': {DECODER_TAP}}
        self.matcher = TASK_UTILS.build(matcher) if isinstance(matcher, dict) else \
            (matcher or HungarianMatcher())
        self.loss = MODELS.build(loss) if isinstance(loss, dict) else \
            (loss or HungarianDistillLoss())
        self.layers = layers
        self.clamp_teacher_boxes = clamp_teacher_boxes

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check both are DETR-family detectors with the same classes; hook the decoders."""
        super().bind(student, teacher)
        self._make_readers(student, teacher)
        if student.bbox_head.cls_out_channels != teacher.bbox_head.cls_out_channels:
            raise ValueError('DETRLogitsDistill: student and teacher heads predict different '
                             'numbers of classes')

    @torch.no_grad()
    def match(self, s_cls: Tensor, s_box: Tensor, t_prob: Tensor, t_box: Tensor,
              img_hw: Tensor) -> tuple[Tensor, Tensor]:
        """Matched query indices of every layer pair and image, in one matcher call.

        Args:
            s_cls, s_box: (L, B, Qs, C), (L, B, Qs, 4) student logits and boxes of the
                pairs' student layers.
            t_prob, t_box: (L, B, Qt, C), (L, B, Qt, 4) teacher probabilities and boxes.
            img_hw: (B, 2) image ``(h, w)``.

        Returns:
            ``(student query, teacher query)``: (L, B, min(Qs, Qt)) each.
        """
        layers, b = s_cls.shape[:2]
        s_idx, t_idx = self.matcher.match_batch(
            s_cls.flatten(0, 1), s_box.flatten(0, 1), t_prob.flatten(0, 1),
            t_box.flatten(0, 1), img_hw.repeat(layers, 1))
        return s_idx.view(layers, b, -1), t_idx.view(layers, b, -1)

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_logits``, ``loss_bbox``, ``loss_iou`` summed over the layer pairs: every
        layer pair and image matched in one call (:meth:`match`), the losses of all pairs in
        one call with a normaliser per layer pair."""
        if data_samples is None:
            raise ValueError('DETRLogitsDistill needs the data samples (image metas)')
        img_metas = [ds.metainfo for ds in data_samples]
        s_reader, t_reader = self.readers
        s_cls, s_box = s_reader.predictions(student[DECODER_TAP], 'student')
        with torch.no_grad():
            t_cls, t_box = t_reader.predictions(teacher[DECODER_TAP], 'teacher')
        s_reader.clear()
        t_reader.clear()
        pairs = layer_pairs(s_cls.shape[0], t_cls.shape[0], self.layers)
        s_cls, s_box = (x[layer_selection([p[0] for p in pairs], len(x), x.device)]
                        for x in (s_cls, s_box))
        with torch.no_grad():
            t_sel = layer_selection([p[1] for p in pairs], len(t_cls), t_cls.device)
            t_prob = t_cls[t_sel].float().sigmoid()
            t_box = t_box[t_sel].float()
            if self.clamp_teacher_boxes:
                t_box = clamp_to_image(t_box)
            hw = s_box.new_tensor([m['img_shape'][:2] for m in img_metas])    # (B, 2)
            s_idx, t_idx = self.match(s_cls.detach(), s_box.detach(), t_prob, t_box, hw)
        # (L, B, m) gathers: layer pair, image, matched query
        layer = torch.arange(len(pairs), device=s_cls.device)[:, None, None]
        img = torch.arange(len(img_metas), device=s_cls.device)[None, :, None]
        out = self.loss(s_cls[layer, img, s_idx].flatten(1, 2),
                        s_box[layer, img, s_idx].flatten(1, 2),
                        t_prob[layer, img, t_idx].flatten(1, 2),
                        t_box[layer, img, t_idx].flatten(1, 2),
                        hw.flip(-1)[img.expand_as(s_idx)].flatten(1, 2))
        return dict(out)

