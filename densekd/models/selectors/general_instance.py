"""General Instance Selection Module (GISM) of GID (Dai et al., CVPR 2021).

GID distils at the locations where teacher and student *disagree*, whether or not a
ground-truth object is there. Per prior (anchor or point) ``i`` of the same dense head
layout on both sides, with class probabilities ``P_t[i, c]`` and ``P_s[i, c]``:

* GI score, paper (Eq. 1): ``GI_i = max_c |P_t[i, c] - P_s[i, c]|``;
  author code (``score_mode='author'``): ``GI_i = |max_c P_t[i, c] - max_c P_s[i, c]|``.
* GI box: the decoded box of the more confident model, the teacher's where
  ``max_c P_t[i] > max_c P_s[i]``, else the student's (both modes, as in the author code).
* Per image: top ``pre_nms_topk`` per level, boxes clipped to the image, boxes with a side
  ``<= min_size`` dropped, NMS at IoU ``nms_iou``, then the top ``num_instances`` (K).

The author code (``Distill_GID_detectron2``, ``find_top_rpn_proposals``) runs the NMS per
level (a box only suppresses boxes of its own FPN level) and drops boxes with a side of
10 px or less (at COCO scale). We follow the per-level NMS by default
(``nms_across_levels=False``) and leave ``min_size=0`` (only empty boxes are dropped),
since a fixed pixel size depends on the image scale; COCO configs can set ``min_size=10``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from mmcv.ops import batched_nms
from mmengine.structures import InstanceData
from torch import Tensor

from densekd.registry import TASK_UTILS

__all__ = ['GeneralInstanceSelector', 'gi_scores']


def gi_scores(t_probs: Tensor, s_probs: Tensor, mode: str = 'paper') -> tuple[Tensor, Tensor]:
    """GI score and "teacher is more confident" flag per prior.

    Args:
        t_probs: teacher class probabilities, (..., C).
        s_probs: student class probabilities, (..., C).
        mode: ``'paper'``: ``max_c |P_t - P_s|``; ``'author'``: ``|max_c P_t - max_c P_s|``.

    Returns:
        ``(score, teacher_box)``, both (...): the GI score, and True where the teacher's
        box is taken (``max_c P_t > max_c P_s``).
    """
    t_max = t_probs.max(dim=-1).values
    s_max = s_probs.max(dim=-1).values
    if mode == 'paper':
        score = (t_probs - s_probs).abs().max(dim=-1).values
    elif mode == 'author':
        score = (t_max - s_max).abs()
    else:
        raise ValueError(f"score_mode must be 'paper' or 'author', got {mode!r}")
    return score, t_max > s_max


@TASK_UTILS.register_module()
class GeneralInstanceSelector:
    """Select the K general instances (GIs) of each image from two dense heads' outputs.

    Args:
        num_instances: K, instances kept per image after NMS (paper and code: 10).
        pre_nms_topk: candidates kept per level before NMS (author code: 3000).
        nms_iou: NMS IoU threshold (paper and code: 0.3).
        score_mode: ``'paper'`` or ``'author'``, see :func:`gi_scores`.
        nms_across_levels: one NMS over all levels instead of the author's per-level NMS.
        min_size: drop boxes whose width or height is ``<= min_size`` px after clipping.
        score_thr: if set, drop candidates with a GI score ``<= score_thr``.
    """

    def __init__(self, num_instances: int = 10, pre_nms_topk: int = 3000, nms_iou: float = 0.3,
                 score_mode: str = 'paper', nms_across_levels: bool = False,
                 min_size: float = 0.0, score_thr: float | None = None) -> None:
        if score_mode not in ('paper', 'author'):
            raise ValueError(f"score_mode must be 'paper' or 'author', got {score_mode!r}")
        self.num_instances = num_instances
        self.pre_nms_topk = pre_nms_topk
        self.nms_iou = nms_iou
        self.score_mode = score_mode
        self.nms_across_levels = nms_across_levels
        self.min_size = min_size
        self.score_thr = score_thr

    @torch.no_grad()
    def __call__(self, t_probs: Sequence[Tensor], s_probs: Sequence[Tensor],
                 t_boxes: Sequence[Tensor], s_boxes: Sequence[Tensor],
                 img_shapes: Sequence[tuple[int, int]]) -> list[InstanceData]:
        """Select the GIs of every image of the batch from decoded boxes.

        Args:
            t_probs: per level, teacher probabilities (N, A_l, C).
            s_probs: per level, student probabilities (N, A_l, C).
            t_boxes: per level, teacher decoded boxes (N, A_l, 4), x1y1x2y2 in input pixels.
            s_boxes: per level, student decoded boxes (N, A_l, 4).
            img_shapes: per image, ``(height, width)`` to clip the boxes to.

        Returns:
            Per image an ``InstanceData`` with at most K instances, by decreasing GI score:
            ``bboxes`` (k, 4), ``scores`` (k,), ``levels`` (k,) the FPN level of the prior,
            ``inds`` (k,) the prior's index in the image's level-concatenated priors,
            ``from_teacher`` (k,) whether the box is the teacher's.
        """
        t_all, s_all = torch.cat(list(t_boxes), 1), torch.cat(list(s_boxes), 1)

        def boxes_at(img: int, inds: Tensor, from_t: Tensor) -> Tensor:
            return torch.where(from_t[:, None], t_all[img, inds], s_all[img, inds])

        return self.select(t_probs, s_probs, boxes_at, img_shapes)

    @torch.no_grad()
    def select(self, t_probs: Sequence[Tensor] | Tensor, s_probs: Sequence[Tensor] | Tensor,
               boxes_at: Callable[[int, Tensor, Tensor], Tensor],
               img_shapes: Sequence[tuple[int, int]],
               level_sizes: Sequence[int] | None = None) -> list[InstanceData]:
        """Select the GIs, decoding only the boxes the NMS looks at.

        Same result as :meth:`__call__`, but the boxes come from ``boxes_at(img, inds,
        from_teacher)``: image ``img``'s (m, 4) x1y1x2y2 pixel boxes of the priors ``inds``
        (level-concatenated indices), the teacher's where ``from_teacher`` else the
        student's. The NMS stops once K boxes survive (:meth:`_lazy_nms_top_k`), so typically
        only a few hundred of the tens of thousands of priors are ever decoded.

        With ``level_sizes`` (priors per level), ``t_probs`` and ``s_probs`` are the
        level-concatenated (N, A, C) tensors themselves (no copy to concatenate them).
        """
        if level_sizes is not None:
            sizes, t_all, s_all = list(level_sizes), t_probs, s_probs
            if t_all.shape[1] != sum(sizes) or s_all.shape != t_all.shape:
                raise ValueError(f'select: probabilities {tuple(t_all.shape)} / '
                                 f'{tuple(s_all.shape)} do not span the levels {sizes}')
        else:
            sizes = [p.shape[1] for p in t_probs]
            t_all = torch.cat(list(t_probs), 1) if len(t_probs) > 1 else t_probs[0]
            s_all = torch.cat(list(s_probs), 1) if len(s_probs) > 1 else s_probs[0]
        # one scoring pass over all levels, then the per-level top-k (author: 3000)
        score_all, teacher_all = gi_scores(t_all.float(), s_all.float(), self.score_mode)
        levels = []
        offset = 0
        for lvl, size in enumerate(sizes):
            score = score_all[:, offset:offset + size]
            k = min(size, self.pre_nms_topk)
            top, idx = score.topk(k, dim=1)
            idx = idx + offset
            levels.append((top, teacher_all.gather(1, idx), idx, torch.full_like(idx, lvl)))
            offset += size
        scores, from_t, inds, lvls = (torch.cat(x, dim=1) for x in zip(*levels))
        return [self._select_image(scores[i], from_t[i], inds[i], lvls[i], img_shapes[i],
                                   partial(boxes_at, i)) for i in range(scores.shape[0])]

    def _select_image(self, scores: Tensor, from_t: Tensor, inds: Tensor, lvls: Tensor,
                      img_shape: tuple[int, int],
                      boxes_at: Callable[[Tensor, Tensor], Tensor]) -> InstanceData:
        height, width = img_shape[:2]
        keep = torch.isfinite(scores)
        if self.score_thr is not None:
            keep &= scores > self.score_thr
        scores, from_t, inds, lvls = (x[keep] for x in (scores, from_t, inds, lvls))

        def clipped(sub: Tensor) -> tuple[Tensor, Tensor]:
            boxes = boxes_at(inds[sub], from_t[sub]).float()
            boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                 boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], 1)
            ok = torch.isfinite(boxes).all(dim=1) & \
                (boxes[:, 2] - boxes[:, 0] > self.min_size) & \
                (boxes[:, 3] - boxes[:, 1] > self.min_size)
            return boxes, ok

        groups = torch.zeros_like(lvls) if self.nms_across_levels else lvls
        order, boxes = self._lazy_nms_top_k(clipped, scores, groups)
        return InstanceData(bboxes=boxes, scores=scores[order], levels=lvls[order],
                            inds=inds[order], from_teacher=from_t[order])

    def _nms_top_k(self, boxes: Tensor, scores: Tensor, groups: Tensor) -> Tensor:
        """The first K survivors of (per-group) greedy NMS over ``boxes``, by decreasing
        score (see :meth:`_lazy_nms_top_k`)."""
        return self._lazy_nms_top_k(
            lambda sub: (boxes[sub], torch.ones_like(sub, dtype=torch.bool)), scores,
            groups)[0]

    def _lazy_nms_top_k(self, boxes_of: Callable[[Tensor], tuple[Tensor, Tensor]],
                        scores: Tensor, groups: Tensor) -> tuple[Tensor, Tensor]:
        """The first K survivors of (per-group) greedy NMS, by decreasing score, and their
        boxes.

        ``boxes_of(idx)`` gives the boxes of the candidates ``idx`` and which of them are
        valid (invalid ones take no part). Greedy NMS decides each box from the
        higher-scored boxes only, so NMS on the top-M candidates gives exactly the survivors
        of the full NMS among them (up to ties in score at the cut). Start with a small M
        and grow it until K survive: with thousands of candidates and K=10 this skips most
        of the quadratic NMS work and of the box decoding.
        """
        k = self.num_instances
        ranked = scores.argsort(descending=True, stable=True)
        m = min(len(ranked), max(8 * k, 64))
        cfg = dict(type='nms', iou_threshold=self.nms_iou)
        while True:
            sub = ranked[:m]
            boxes, ok = boxes_of(sub)
            sub, boxes = sub[ok], boxes[ok]
            if len(sub):
                _, keep = batched_nms(boxes, scores[sub], groups[sub], cfg)
            else:
                keep = sub.new_zeros(0)
            if len(keep) >= k or m == len(ranked):
                keep = keep[:k]
                return sub[keep], boxes[keep]
            m = min(len(ranked), 4 * m)
