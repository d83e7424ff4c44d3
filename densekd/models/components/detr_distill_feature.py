"""DETRFeatureDistill: DETRDistill's target-aware feature distillation."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps, get_box_tensor
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence

from densekd.registry import MODELS

from ..losses.detr_distill import TargetAwareFeatureLoss
from .base import DistillComponent, TapLevels, TapShapes
from .detr_io import DECODER_TAP, DetrComponentMixin, layer_selection

__all__ = ['DETRFeatureDistill', 'select_target_queries']


@torch.no_grad()
def select_target_queries(cls: Tensor, boxes: Tensor, embeds: Tensor, topk: int,
                          data_samples: list[Any]) -> tuple[Tensor, Tensor]:
    """The teacher's top-k (query, class) pairs of its decoder stages and their quality.

    Scores are the sigmoid probabilities over the flattened (Q x C); each selected pair
    contributes its query's embedding and ``q = score x max IoU(box, GT boxes)`` (pixel
    boxes), or ``q = score`` for an image without GT (reference code). A query can be
    selected for several classes; it then appears several times. Every stage and image at
    once: the images' GT boxes padded with NaN rows, which take no part in the max.

    Args:
        cls: (..., B, Q, C) teacher logits (leading dims: decoder stages).
        boxes: (..., B, Q, 4) normalised cxcywh.
        embeds: (..., B, Q, D) teacher decoder output embeddings.
        topk: k (reference: ``test_cfg.max_per_img`` = 100); capped at Q x C.
        data_samples: with ``gt_instances.bboxes`` (pixel xyxy) and ``img_shape``.

    Returns:
        ``(queries (..., B, k, D), quality (..., B, k))``.
    """
    num_classes = cls.shape[-1]
    k = min(topk, cls.shape[-2] * num_classes)
    scores, idx = cls.float().sigmoid().flatten(-2).topk(k, dim=-1)
    query_idx = idx // num_classes
    queries = torch.gather(embeds, -2, query_idx[..., None].expand(
        *query_idx.shape, embeds.shape[-1]))
    gts = [get_box_tensor(ds.gt_instances.bboxes).to(boxes.device).float()
           for ds in data_samples]
    if not any(len(g) for g in gts):
        return queries, scores
    gt = pad_sequence(gts, batch_first=True, padding_value=float('nan'))    # (B, G, 4)
    hw = boxes.new_tensor([ds.metainfo['img_shape'][:2] for ds in data_samples])
    factor = torch.cat([hw.flip(-1), hw.flip(-1)], -1)[:, None]             # (B, 1, 4)
    sel = torch.gather(boxes.float(), -2, query_idx[..., None].expand(*query_idx.shape, 4))
    sel = bbox_cxcywh_to_xyxy(sel) * factor
    gt = gt.expand(*sel.shape[:-2], *gt.shape[-2:])
    iou = bbox_overlaps(sel, gt).nan_to_num(nan=0.0)     # padded GT rows: NaN -> 0
    has_gt = gt[..., 0].isfinite().any(-1, keepdim=True)                   # (..., B, 1)
    return queries, torch.where(has_gt, scores * iou.amax(-1), scores)


@MODELS.register_module()
class DETRFeatureDistill(DetrComponentMixin, DistillComponent):
    """Target-aware feature distillation (DETRDistill, ICCV 2023).

    For each chosen teacher decoder stage s: the teacher's top-k (query, class) pairs and
    their quality (:func:`select_target_queries`) weight the cosine similarity of the
    teacher's query embeddings with every location of each teacher feature level into a mask
    (:func:`target_aware_mask`); the loss is ``MSE_mean(mask * F_T, mask * adapter(F_S))``
    per level (:class:`TargetAwareFeatureLoss`), summed over levels and stages.

    Stages: the reference code uses every decoder stage (``stages=None``, default, so the
    default loss scale matches it); ``stages=[-1]`` uses the final one only (6x cheaper and
    6x smaller for 6 layers).

    Taps: ``student_feat`` / ``teacher_feat`` (the neck: the encoder's inputs, as in the
    reference) and the teacher's ``decoder`` (embeddings; scores and boxes via
    :func:`head_predictions`).
    The teacher's decoder width must equal its neck width (true for mmdet's DETRs).
    ``adapter`` (1x1 conv) is built per level only when the channel counts differ.

    Args:
        student_feat: student feature tap (one level per teacher level).
        teacher_feat: teacher feature tap.
        topk: selected (query, class) pairs per image (reference: 100).
        stages: teacher decoder stages used, ``None`` for all.
        loss: :class:`TargetAwareFeatureLoss` or its config.
        adapter: projector config for differing widths (default ``ConvProjector``, 1x1).
        init_cfg: mmengine init config.
    """

    def __init__(self, student_feat: str = 'neck', teacher_feat: str = 'neck', topk: int = 100,
                 stages: Sequence[int] | None = None, loss: dict | nn.Module | None = None,
                 adapter: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.student_feat, self.teacher_feat = student_feat, teacher_feat
        self.student_taps = [student_feat]
        self.teacher_taps = [teacher_feat, DECODER_TAP]
        self.clone_taps = {'student': set(), 'teacher': {DECODER_TAP}}
        self.topk = topk
        self.stages = None if stages is None else [int(s) for s in stages]
        self.loss = MODELS.build(loss) if isinstance(loss, dict) else \
            (loss or TargetAwareFeatureLoss())
        self.adapter_cfg = adapter or dict(type='densekd.ConvProjector')
        self.adapters = nn.ModuleList()

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check both are DETR-family detectors; hook the decoders."""
        super().bind(student, teacher)
        self._make_readers(student, teacher)

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Check levels and widths; build an adapter per level where widths differ."""
        s_shapes, t_shapes = student_shapes[self.student_feat], teacher_shapes[self.teacher_feat]
        if len(s_shapes) != len(t_shapes):
            raise ValueError(f'DETRFeatureDistill: {len(s_shapes)} student vs {len(t_shapes)} '
                             'teacher feature levels')
        width = teacher_shapes[DECODER_TAP][0][-1]
        if any(t[1] != width for t in t_shapes):
            raise ValueError(f'DETRFeatureDistill: teacher decoder width {width} differs from '
                             f'its feature widths {[t[1] for t in t_shapes]}')
        self.adapters = nn.ModuleList(
            nn.Identity() if s[1] == t[1] else
            MODELS.build(dict(self.adapter_cfg, in_channels=s[1], out_channels=t[1]))
            for s, t in zip(s_shapes, t_shapes))

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_feature``: summed over the chosen stages and all levels."""
        if data_samples is None:
            raise ValueError('DETRFeatureDistill needs the data samples (ground truth)')
        s_feats, t_feats = student[self.student_feat], teacher[self.teacher_feat]
        t_reader = self.readers[1]
        with torch.no_grad():
            t_cls, t_box = t_reader.predictions(teacher[DECODER_TAP], 'teacher')
            embeds = t_reader.embeddings(teacher[DECODER_TAP])
        for reader in self.readers:
            reader.clear()
        stages = range(t_cls.shape[0]) if self.stages is None else self.stages
        adapted = [a(s) for a, s in zip(self.adapters, s_feats)]
        sel = layer_selection(list(stages), len(t_cls), t_cls.device)
        queries, quality = select_target_queries(t_cls[sel], t_box[sel], embeds[sel],
                                                 self.topk, data_samples)
        total = adapted[0].sum() * 0
        for s, t in zip(adapted, t_feats):
            if s.shape[-2:] != t.shape[-2:]:
                raise ValueError(f'DETRFeatureDistill: feature sizes differ '
                                 f'({tuple(s.shape)} vs {tuple(t.shape)})')
            total = total + self.loss(s, t, queries, quality)
        return dict(loss_feature=total)
