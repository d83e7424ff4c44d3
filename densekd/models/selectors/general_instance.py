"""General Instance Selection Module (GISM) of GID (Dai et al., CVPR 2021).

GID distils at the locations where teacher and student *disagree*, whether or not a
ground-truth object is there. Per prior (anchor or point) ``i`` of the same dense head
layout on both sides, with class probabilities ``P_t[i, c]`` and ``P_s[i, c]``:

* GI score, paper (Eq. 1): ``GI_i = max_c |P_t[i, c] - P_s[i, c]|``;
  author code (``score_mode='author'``): ``GI_i = |max_c P_t[i, c] - max_c P_s[i, c]|``.
* GI box: the decoded box of the more confident model, the teacher's where
  ``max_c P_t[i] > max_c P_s[i]``, else the student's (both modes, as in the author code).
* Per image: top ``pre_nms_topk`` per level among the valid priors (a non-finite score, or
  one ``<= score_thr``, never takes a top-k place), boxes clipped to the image, boxes with a
  side ``<= min_size`` dropped, NMS at IoU ``nms_iou``, then the top ``num_instances`` (K).
  The NMS of a batch runs in one mmcv ``batched_nms`` call per round (groups per image and
  level), whose coordinate offsets round boxes in float32: a decision can differ from a
  per-image NMS only for IoUs within ~1e-4 of ``nms_iou``.

The author code (``Distill_GID_detectron2``, ``find_top_rpn_proposals``) runs the NMS per
level (a box only suppresses boxes of its own FPN level) and drops boxes with a side of
10 px or less (at COCO scale). We follow the per-level NMS by default
(``nms_across_levels=False``) and leave ``min_size=0`` (only empty boxes are dropped),
since a fixed pixel size depends on the image scale; COCO configs can set ``min_size=10``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

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
    # amax, not max: no argmax indices (several times faster over 80 classes on CPU)
    t_max = t_probs.amax(dim=-1)
    s_max = s_probs.amax(dim=-1)
    if mode == 'paper':
        score = (t_probs - s_probs).abs_().amax(dim=-1)
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

        def boxes_at(imgs: Tensor, inds: Tensor, from_t: Tensor) -> Tensor:
            return torch.where(from_t[:, None], t_all[imgs, inds], s_all[imgs, inds])

        return self.select(t_probs, s_probs, boxes_at, img_shapes)

    @torch.no_grad()
    def select(self, t_probs: Sequence[Tensor] | Tensor, s_probs: Sequence[Tensor] | Tensor,
               boxes_at: Callable[[Tensor, Tensor, Tensor], Tensor],
               img_shapes: Sequence[tuple[int, int]],
               level_sizes: Sequence[int] | None = None) -> list[InstanceData]:
        """Select the GIs, decoding only the boxes the NMS looks at.

        Same result as :meth:`__call__`, but the boxes come from ``boxes_at(imgs, inds,
        from_teacher)``, three (m,) tensors: the (m, 4) x1y1x2y2 pixel boxes of image
        ``imgs[j]``'s prior ``inds[j]`` (level-concatenated index), the teacher's where
        ``from_teacher[j]`` else the student's. The NMS stops once K boxes survive
        (:meth:`_lazy_nms_top_k`), so typically only a few hundred of the tens of thousands
        of priors are ever decoded, in one call for the whole batch.

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
        # one scoring pass over all levels; the per-level top-k (author: 3000) is made
        # only if the NMS gets that deep (_ranking)
        score_all, teacher_all = gi_scores(t_all.float(), s_all.float(), self.score_mode)
        device = score_all.device
        valid = torch.isfinite(score_all)
        if self.score_thr is not None:
            valid &= score_all > self.score_thr
        ranked_of, counts = self._ranking(score_all, valid, sizes)
        level_of = self._level_of(sizes, device)
        limits = torch.tensor([[float(s[1]), float(s[0])] * 2 for s in img_shapes],
                              device=device)  # per image (w, h, w, h) to clip to

        def clipped(imgs: Tensor, inds: Tensor) -> tuple[Tensor, Tensor]:
            boxes = boxes_at(imgs, inds, teacher_all[imgs, inds]).float()
            boxes = torch.minimum(boxes.clamp(min=0), limits[imgs])
            size = boxes[:, 2:] - boxes[:, :2]
            ok = torch.isfinite(boxes).all(dim=1) & (size > self.min_size).all(dim=1)
            return boxes, ok

        if self.nms_across_levels:
            groups, num_groups = (lambda imgs, inds: torch.zeros_like(inds)), 1
        else:
            groups, num_groups = (lambda imgs, inds: level_of[inds]), len(sizes)
        out = []
        for img, (inds, boxes) in enumerate(self._lazy_nms_top_k(
                clipped, score_all, groups, num_groups, counts, ranked_of)):
            out.append(InstanceData(bboxes=boxes, scores=score_all[img, inds],
                                    levels=level_of[inds], inds=inds,
                                    from_teacher=teacher_all[img, inds]))
        return out

    @staticmethod
    def _level_of(sizes: Sequence[int], device: torch.device) -> Tensor:
        """(A,) level of each level-concatenated prior."""
        return torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                       torch.tensor(sizes, device=device))

    def _ranking(self, scores: Tensor, valid: Tensor, sizes: Sequence[int],
                 ) -> tuple[Callable[[int], Tensor], Tensor]:
        """The candidates of each image (per level its top ``pre_nms_topk`` priors by GI
        score, the invalid ones dropped) ranked by decreasing score, lazily.

        Returns ``ranked_of(m)``, the (N, <= m) prior indices of each image's first m
        candidates, and the (N,) number of candidates. While ``m <= pre_nms_topk`` the first
        m candidates are simply the m best valid priors of the image: a prior among those
        has fewer than m better priors on its level, so it is within its level's top-k;
        one ``topk(m)`` over all priors replaces the per-level top-k and the sort. Beyond,
        the per-level top-k is made and sorted once (ties keep level, then rank order).
        """
        topk = self.pre_nms_topk
        masked = scores.masked_fill(~valid, float('-inf'))
        counts = valid.sum(dim=1)
        offset = 0
        for size in sizes:  # a level keeps at most topk candidates
            if size > topk:
                counts -= (valid[:, offset:offset + size].sum(dim=1) - topk).clamp(min=0)
            offset += size
        full: list[Tensor] = []

        def ranked_of(m: int) -> Tensor:
            m = min(m, masked.shape[1])
            if m <= topk:
                return masked.topk(m, dim=1).indices
            if not full:
                idx, offset = [], 0
                for size in sizes:
                    if size > topk:
                        top = masked[:, offset:offset + size].topk(topk, dim=1).indices
                        idx.append(top + offset)
                    else:
                        idx.append(torch.arange(offset, offset + size, device=scores.device
                                                ).expand(len(scores), size))
                    offset += size
                cand = torch.cat(idx, dim=1)
                order = masked.gather(1, cand).argsort(dim=1, descending=True, stable=True)
                full.append(cand.gather(1, order))
            return full[0][:, :m]

        return ranked_of, counts

    def _nms_top_k(self, boxes: Tensor, scores: Tensor, groups: Tensor) -> Tensor:
        """The first K survivors of (per-group) greedy NMS over one image's ``boxes``, by
        decreasing score (see :meth:`_lazy_nms_top_k`)."""
        order = scores.argsort(descending=True, stable=True)[None]
        return self._lazy_nms_top_k(
            lambda imgs, inds: (boxes[inds], torch.ones_like(inds, dtype=torch.bool)),
            scores[None], lambda imgs, inds: groups[inds],
            int(groups.max()) + 1 if len(groups) else 1,
            torch.tensor([len(scores)], device=scores.device), lambda m: order[:, :m])[0][0]

    def _lazy_nms_top_k(self, boxes_of: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
                        scores: Tensor, groups_of: Callable[[Tensor, Tensor], Tensor],
                        num_groups: int, counts: Tensor, ranked_of: Callable[[int], Tensor],
                        ) -> list[tuple[Tensor, Tensor]]:
        """Per image, the first K survivors of (per-group) greedy NMS among its ranked
        candidates, by decreasing score, and their boxes.

        Greedy NMS decides each box from the higher-scored boxes only, so NMS on an image's
        first M candidates gives exactly the survivors of the full NMS among them (up to
        ties in score at the cut). Start with a small M and grow it (for the images still
        short of K survivors) until K survive: with thousands of candidates and K=10 this
        skips most of the quadratic NMS work and of the box decoding. Each round is one
        decode and one NMS for all its images (groups made distinct per image).

        Args:
            boxes_of: ``boxes_of(imgs, inds)`` -> boxes (m, 4) of the priors ``inds`` of
                the images ``imgs`` and which are valid (invalid ones take no part).
            scores: (N, A) prior scores.
            groups_of: ``groups_of(imgs, inds)`` -> (m,) NMS group in ``[0, num_groups)``
                (image ``i``'s group ``g`` becomes ``i * num_groups + g``).
            num_groups: number of groups per image.
            counts: (N,) candidates of each image.
            ranked_of: ``ranked_of(m)`` -> (N, <= m) each image's first m candidates'
                prior indices, best first.

        Returns:
            Per image ``(inds, boxes)``: the survivors' prior indices (k,) and boxes.
        """
        n = scores.shape[0]
        k = self.num_instances
        cfg = dict(type='nms', iou_threshold=self.nms_iou)
        out: list[tuple[Tensor, Tensor] | None] = [None] * n
        active = torch.arange(n, device=scores.device)  # images still short of K survivors
        m = max(8 * k, 64)
        while len(active):
            ranked = ranked_of(m)[active]
            take = torch.arange(ranked.shape[1], device=scores.device) < counts[active, None]
            imgs = active[:, None].expand_as(ranked)[take]
            inds = ranked[take]
            boxes, ok = boxes_of(imgs, inds)
            imgs, inds, boxes = imgs[ok], inds[ok], boxes[ok]
            if len(inds):
                _, keep = batched_nms(boxes, scores[imgs, inds],
                                      imgs * num_groups + groups_of(imgs, inds), cfg)
                keep = keep[imgs[keep].argsort(stable=True)]  # per image, by score
            else:
                keep = inds.new_zeros(0)
            found = torch.bincount(imgs[keep], minlength=n)[active]
            done = (found >= k) | (counts[active] <= ranked.shape[1])
            # one host read per round: image ids, survivors found, whether done
            ids, found_n, fins = torch.stack([active, found, done.long()]).tolist()
            for img, seg, fin in zip(ids, keep.split(found_n), fins):
                if fin:
                    seg = seg[:k]
                    out[img] = (inds[seg], boxes[seg])
            active = active[~done]
            m *= 4
        return out
