"""GeneralInstanceDistill: GID (Dai et al., CVPR 2021) for mmdet dense detectors."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from densekd.registry import MODELS, TASK_UTILS

from ..losses._checks import check_positive, check_weight
from ..losses.gid import GIDFeatureLoss, GIDRelationLoss, GIDResponseLoss
from ..ops import SeparableRoIAlign, separable_roi_align_levels
from ..selectors.dense_head import DenseHeadReader
from ..selectors.general_instance import GeneralInstanceSelector
from .base import DistillComponent, TapLevels, TapShapes

__all__ = ['GeneralInstanceDistill', 'gid_roi_levels']

# detectron2's ROIPooler (the GID author code's pooler): a box of side 224 px pools from
# level 4 (stride 16)
CANONICAL_BOX_SIZE = 224
CANONICAL_LEVEL = 4


def gid_roi_levels(rois: Tensor, strides: Sequence[int],
                   finest_scale: float | None = None) -> Tensor:
    """Pyramid level of each RoI, as an index into ``strides`` (0 = the finest level).

    With ``finest_scale=None`` the rule of the GID author code, detectron2's ``ROIPooler``
    (``assign_boxes_to_levels``, canonical box size 224, canonical level 4)::

        level = floor(4 + log2(sqrt(w h) / 224 + 1e-8)) - log2(strides[0])

    clamped to the pyramid, where level ``l`` is the map of stride ``2**l``. On a P3-first
    pyramid (RetinaNet, strides 8..128) boxes under 224 px pool from P3, 224-447 px from P4,
    and so on; on a P2-first one (an RPN, strides 4..64) boxes under 112 px from P2. This is
    mmdet's rule below with ``finest_scale = 224 * strides[0] / 16 = 14 * strides[0]`` (112
    and 56), up to the ``eps``.

    With a number, mmdet's ``SingleRoIExtractor.map_roi_levels``:
    ``floor(log2(sqrt(w h) / finest_scale + 1e-6))`` clamped to the pyramid (boxes under
    ``2 * finest_scale`` to the first level).

    Args:
        rois: (R, 5) ``[batch_index, x1, y1, x2, y2]`` in pixels.
        strides: the pyramid's strides, finest first; with ``finest_scale=None``
            powers of two, each twice the one before (as detectron2 requires).
        finest_scale: ``None`` for the author's rule, or mmdet's scale.

    Returns:
        (R,) int64 level indices in ``[0, len(strides) - 1]``.

    Raises:
        ValueError: ``finest_scale=None`` and ``strides`` are not such a pyramid.
    """
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    if finest_scale is None:
        min_level = pyramid_min_level(strides)
        levels = torch.floor(CANONICAL_LEVEL
                             + torch.log2(scale / CANONICAL_BOX_SIZE + 1e-8)) - min_level
    else:
        levels = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return levels.clamp(min=0, max=len(strides) - 1).long()


def pyramid_min_level(strides: Sequence[int]) -> int:
    """``log2(strides[0])`` for strides ``2**l, 2**(l+1), ...``; else ``ValueError``."""
    first = math.log2(strides[0]) if strides and strides[0] > 0 else 0.5
    if not first.is_integer() or any(s != strides[0] * 2 ** i for i, s in enumerate(strides)):
        raise ValueError(f'GeneralInstanceDistill: the RoI level rule of the author code '
                         f'(detectron2 ROIPooler, finest_scale=None) needs strides that are '
                         f'powers of two, each twice the one before; got {list(strides)}. '
                         f'Pass finest_scale= (mmdet\'s rule: boxes under 2 * finest_scale '
                         f'pool from the first level)')
    return int(first)


@MODELS.register_module()
class GeneralInstanceDistill(DistillComponent):
    """General Instance Distillation between two dense detectors of the same head type.

    Each step: the teacher's and student's head outputs (tapped at the head's last
    classification and regression convs, one map per FPN level) go through the GISM
    (:class:`GeneralInstanceSelector`) to K general instances (GIs) per image; then

    * ``loss_feature``: RoIAlign (``roi_size`` x ``roi_size``, sampling ratio 2, aligned)
      of each GI on the FPN level the author code's detectron2 ``ROIPooler`` gives it
      (:func:`gid_roi_levels`: a 224 px box on the stride-16 level, so on RetinaNet's P3-P7
      boxes under 224 px pool from P3; or mmdet's rule with an explicit ``finest_scale``),
      the student's through ``adapter`` when channels differ, :func:`gid_feature_loss`
      (weight 5e-3);
    * ``loss_relation``: :func:`gid_relation_loss` on the same pooled features (the
      student's without adapter: distances are compared, not features), per image by
      default (paper), batch-wide with ``relation_per_image=False`` (author code); weight 40;
    * ``loss_response_cls`` / ``loss_response_reg``: :func:`gid_response_loss` at the priors
      the student head's own ``get_targets`` assigns to the GIs (RetinaNet: its
      MaxIoUAssigner, as the author's anchor matcher), on class logits and on the
      regression in the head's own encoding (:class:`DenseHeadReader`); weights 0.1.

    GI scores use the sigmoid class scores only (FCOS's and ATSS's centerness branches are
    not tapped). For ``head='rpn'`` the assignment is the RPN's train_cfg assigner and
    sampler (mmdet's default ``RandomSampler`` keeps at most 128 positives per image, far
    more than K GIs give). A weight of 0 switches that loss off (its key is not returned). The
    selection and the assignment run without gradients; gradients reach the student's FPN,
    head convs (and head ``scales``) and the adapter only.

    Example::

        dict(type='densekd.GeneralInstanceDistill', name='gid', head='retina',
             selector=dict(type='densekd.GeneralInstanceSelector', num_instances=10))

    Args:
        head: ``'retina'``, ``'atss'``, ``'fcos'``, ``'gfl'`` (the detectors' ``bbox_head``)
            or ``'rpn'`` (two-stage detectors: selection, response losses and the RoI
            levels from the ``rpn_head``, one objectness class; the RoI head is not
            distilled); both models must have it.
        student_feat: student FPN tap (one level per head level).
        teacher_feat: teacher FPN tap.
        selector: a :class:`GeneralInstanceSelector` or its config; default K=10.
        feature_weight: weight of ``loss_feature``.
        relation_weight: weight of ``loss_relation``.
        response_cls_weight: weight of ``loss_response_cls``.
        response_reg_weight: weight of ``loss_response_reg``.
        relation_per_image: relation loss per image (paper) or over the batch (author).
        roi_size: pooled size (author: 10).
        finest_scale: ``None`` (default): the author code's RoI level rule for the head's
            pyramid (detectron2 ``ROIPooler``; equal to mmdet's rule at
            ``14 * strides[0]``: 112 on P3-P7, 56 on an RPN's P2-P6). A number: mmdet's
            ``SingleRoIExtractor`` rule with that ``finest_scale`` (boxes under
            ``2 * finest_scale`` to the first level), e.g. scaled to smaller anchors.
        adapter: projector config for the student's pooled features when channel counts
            differ (1x1 conv: commutes with RoIAlign, so equals adapting the FPN maps).
        init_cfg: mmengine init config.
    """

    def __init__(self, head: str = 'retina', student_feat: str = 'neck',
                 teacher_feat: str = 'neck',
                 selector: dict | GeneralInstanceSelector | None = None,
                 feature_weight: float = 5e-3, relation_weight: float = 40.0,
                 response_cls_weight: float = 0.1, response_reg_weight: float = 0.1,
                 relation_per_image: bool = True, roi_size: int = 10,
                 finest_scale: float | None = None,
                 adapter: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for key, value in (('feature_weight', feature_weight),
                           ('relation_weight', relation_weight),
                           ('response_cls_weight', response_cls_weight),
                           ('response_reg_weight', response_reg_weight)):
            check_weight('GeneralInstanceDistill', key, value)
        check_positive('GeneralInstanceDistill', 'roi_size', roi_size, 'the pooled size')
        if finest_scale is not None:
            check_positive('GeneralInstanceDistill', 'finest_scale', finest_scale)
        self.reader = DenseHeadReader(head)
        self.cls_tap, self.reg_tap = DenseHeadReader.TAPS[head]
        self.student_feat, self.teacher_feat = student_feat, teacher_feat
        self.student_taps = [student_feat, self.cls_tap, self.reg_tap]
        self.teacher_taps = [teacher_feat, self.cls_tap, self.reg_tap]
        if selector is None:
            selector = GeneralInstanceSelector()
        elif isinstance(selector, dict):
            selector = TASK_UTILS.build(selector)
        self.selector = selector
        self.feature_loss = GIDFeatureLoss(feature_weight)
        self.relation_loss = GIDRelationLoss(relation_weight, per_image=relation_per_image)
        self.response_loss = GIDResponseLoss(response_cls_weight, response_reg_weight)
        self.roi_size = roi_size
        self.finest_scale = finest_scale
        self.level_strides: tuple[int, ...] = ()
        self.adapter_cfg = adapter or dict(type='densekd.ConvProjector')
        self.adapter: nn.Module | None = None

    def bind(self, student: nn.Module, teacher: nn.Module) -> None:
        """Check that both heads are of the declared type with the same priors."""
        super().bind(student, teacher)
        s_head, t_head = self.reader.head(student), self.reader.head(teacher)
        self.reader.check(s_head, 'student')
        self.reader.check(t_head, 'teacher')
        s_gen, t_gen = s_head.prior_generator, t_head.prior_generator
        same = (s_head.num_classes == t_head.num_classes
                and s_gen.num_base_priors == t_gen.num_base_priors
                and self.reader.strides(s_head) == self.reader.strides(t_head))
        if same and hasattr(s_gen, 'base_anchors'):
            same = all(torch.equal(a, b) for a, b in zip(s_gen.base_anchors, t_gen.base_anchors))
        if not same:
            raise ValueError('GeneralInstanceDistill: student and teacher heads must share '
                             'classes, strides and anchors (GID compares them prior by prior)')

    def setup(self, student_shapes: TapShapes, teacher_shapes: TapShapes) -> None:
        """Build the RoI layers and, if channels differ, the adapter."""
        strides = self.reader.strides(self.reader.head(self.student_model))
        s_shapes, t_shapes = student_shapes[self.student_feat], teacher_shapes[self.teacher_feat]
        if len(s_shapes) < len(strides) or len(t_shapes) < len(strides):
            raise ValueError(f'GeneralInstanceDistill: feature taps give {len(s_shapes)} / '
                             f'{len(t_shapes)} levels, the head has {len(strides)}')
        s_ch, t_ch = s_shapes[0][1], t_shapes[0][1]
        self.level_strides = tuple(int(s) for s in strides)
        if self.finest_scale is None:
            pyramid_min_level(self.level_strides)  # the author's rule needs a 2x pyramid
        # mmcv's RoIAlign, or on small CPU maps the same values as two matrix products
        # whose weights the student and teacher share (same RoIs, levels and map sizes)
        self.roi_layers = nn.ModuleList(
            SeparableRoIAlign(self.roi_size, 1.0 / s, sampling_ratio=2, aligned=True)
            for s in strides)
        if s_ch != t_ch:
            self.adapter = MODELS.build(dict(self.adapter_cfg, in_channels=s_ch,
                                             out_channels=t_ch))

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """Level index of each RoI (R, 5) among the first ``num_levels`` head levels:
        :func:`gid_roi_levels` with the head's strides and ``finest_scale``."""
        return gid_roi_levels(rois, self.level_strides[:num_levels], self.finest_scale)

    def pool(self, s_feats: list[Tensor], t_feats: list[Tensor],
             rois: Tensor) -> tuple[Tensor, Tensor]:
        """RoIAlign of ``rois`` (R, 5) on the student's (with gradients) and teacher's
        (without) FPN levels: (R, C_s, P, P) and (R, C_t, P, P).

        The values of mmdet's ``SingleRoIExtractor`` with this RoI layer (tested); the level
        mapping and, on small CPU maps, the interpolation weights are computed once for
        both models.
        """
        num_levels = len(self.roi_layers)
        levels = self.map_roi_levels(rois, num_levels)
        if all(layer.uses_products(s) and layer.uses_products(t) and s.shape[-2:] == t.shape[-2:]
               for layer, s, t in zip(self.roi_layers, s_feats, t_feats)):
            # every level by the products: one pass for the weights, RoIs grouped by level
            layer = self.roi_layers[0]
            return separable_roi_align_levels(
                s_feats, t_feats, rois, levels, [r.spatial_scale for r in self.roi_layers],
                self.roi_size, layer.sampling_ratio, layer.aligned)
        p = self.roi_size
        s_out = s_feats[0].new_zeros(len(rois), s_feats[0].shape[1], p, p)
        t_out = t_feats[0].new_zeros(len(rois), t_feats[0].shape[1], p, p)
        unused = s_out.new_zeros(())
        for lvl, layer in enumerate(self.roi_layers):
            idx = (levels == lvl).nonzero().squeeze(1)
            if idx.numel() == 0:  # in the graph anyway, as mmdet's extractor (DDP)
                unused = unused + s_feats[lvl].sum() * 0
                continue
            s_lvl, t_lvl = layer.forward_pair(s_feats[lvl], t_feats[lvl], rois[idx])
            s_out = s_out.index_copy(0, idx, s_lvl)
            t_out.index_copy_(0, idx, t_lvl)
        return s_out + unused, t_out

    def _read(self, student: TapLevels, teacher: TapLevels) -> tuple[Tensor, ...]:
        """Class logits (N, A, C) and regressions (N, A, 4) of both heads, all levels
        concatenated in prior order, read once per step (the student's with gradients, the
        teacher's without)."""
        s_head, t_head = self.reader.head(self.student_model), self.reader.head(self.teacher_model)
        s_cls = self.reader.logits_all(s_head, student[self.cls_tap])
        s_reg = self.reader.regression_all(s_head, student[self.reg_tap])
        with torch.no_grad():
            t_cls = self.reader.logits_all(t_head, teacher[self.cls_tap])
            t_reg = self.reader.regression_all(t_head, teacher[self.reg_tap])
        return s_cls, s_reg, t_cls, t_reg

    def select(self, student: TapLevels, teacher: TapLevels,
               img_metas: list[dict]) -> list:
        """Run the GISM on the tapped head outputs; per image an ``InstanceData``."""
        with torch.no_grad():
            return self._select(student, *self._read(student, teacher), img_metas)

    @torch.no_grad()
    def _select(self, student: TapLevels, s_cls: Tensor, s_regs: Tensor, t_cls: Tensor,
                t_regs: Tensor, img_metas: list[dict]) -> list:
        s_head, t_head = self.reader.head(self.student_model), self.reader.head(self.teacher_model)
        sizes = [x.shape[-2:] for x in student[self.cls_tap]]
        priors, strides = self.reader.flat_priors(s_head, sizes, s_cls.device)
        # one decode for both models when their coders agree (else one per model)
        one_coder = t_regs.dtype == s_regs.dtype and self.reader.same_decoding(s_head, t_head)

        def boxes_at(imgs: Tensor, inds: Tensor, from_t: Tensor) -> Tensor:
            # decode only the candidates the NMS looks at, each with its model's head
            if one_coder:
                regs = torch.where(from_t[:, None], t_regs[imgs, inds], s_regs[imgs, inds])
                return self.reader.decode_rows(s_head, priors[inds], regs, strides[inds])
            boxes = priors.new_empty(len(inds), 4)
            for head, regs, use in ((t_head, t_regs, from_t), (s_head, s_regs, ~from_t)):
                if use.any():
                    i, j = imgs[use], inds[use]
                    boxes[use] = self.reader.decode_rows(head, priors[j], regs[i, j],
                                                         strides[j]).to(boxes.dtype)
            return boxes

        # sigmoid once over all levels, handed over concatenated
        level_sizes = [len(p) for p in self.reader.priors(s_head, sizes, s_cls.device)]
        return self.selector.select(t_cls.sigmoid(), s_cls.sigmoid(), boxes_at,
                                    [m['img_shape'] for m in img_metas], level_sizes)

    def forward(self, student: TapLevels, teacher: TapLevels,
                data_samples: list[Any] | None = None) -> dict[str, Tensor]:
        """``loss_feature``, ``loss_relation``, ``loss_response_cls``, ``loss_response_reg``."""
        if data_samples is None:
            raise ValueError('GeneralInstanceDistill needs the data samples (image metas)')
        for tap in (self.cls_tap, self.reg_tap):
            if [(x.shape[0], x.shape[-2:]) for x in student[tap]] != \
                    [(x.shape[0], x.shape[-2:]) for x in teacher[tap]]:
                raise ValueError(f'GeneralInstanceDistill: {tap!r} maps differ in size')
        img_metas = [ds.metainfo for ds in data_samples]
        s_cls, s_reg, t_cls, t_reg = self._read(student, teacher)
        gis = self._select(student, s_cls.detach(), s_reg.detach(), t_cls, t_reg, img_metas)
        losses = {}
        strides = self.reader.strides(self.reader.head(self.student_model))
        if self.feature_loss.loss_weight or self.relation_loss.loss_weight:
            rois = bbox2roi([g.bboxes for g in gis])
            s_roi, t_roi = self.pool(student[self.student_feat][:len(strides)],
                                     teacher[self.teacher_feat][:len(strides)], rois)
            if self.feature_loss.loss_weight:
                s_adapted = s_roi if self.adapter is None else self.adapter(s_roi)
                losses['loss_feature'] = self.feature_loss(s_adapted, t_roi)
            if self.relation_loss.loss_weight:
                losses['loss_relation'] = self.relation_loss(s_roi, t_roi, rois[:, 0])
        resp = self.response_loss
        if resp.cls_weight or resp.reg_weight:
            sizes = [x.shape[-2:] for x in student[self.cls_tap]]
            mask = self.reader.assign(self.reader.head(self.student_model), sizes,
                                      [g.bboxes for g in gis], img_metas)
            cls, reg = resp(*(x.flatten(0, 1) for x in (s_cls, t_cls, s_reg, t_reg)),
                            mask.flatten())
            if resp.cls_weight:
                losses['loss_response_cls'] = cls
            if resp.reg_weight:
                losses['loss_response_reg'] = reg
        return losses
