"""GID's RoI level mapping: the author code's rule (detectron2 ``ROIPooler``), re-derived here
from detectron2's formula, on P3-first (RetinaNet) and P2-first (RPN) pyramids; mmdet's rule
when ``finest_scale`` is given."""
import math

import pytest
import torch
from mmcv.ops import roi_align
from mmengine.config import Config

from densekd.models import DistillationModel
from densekd.models.components.gid import gid_roi_levels

RETINA_STRIDES = (8, 16, 32, 64, 128)    # P3-P7
RPN_STRIDES = (4, 8, 16, 32, 64)         # P2-P6


def detectron2_level(side: float, strides) -> int:
    """detectron2 ``assign_boxes_to_levels`` (canonical box 224 at canonical level 4), in
    plain Python: ``floor(4 + log2(side / 224 + 1e-8))`` clamped to ``[min_level,
    max_level]`` with ``min_level = log2(strides[0])``; returned relative to ``min_level``."""
    min_level, max_level = int(math.log2(strides[0])), int(math.log2(strides[-1]))
    level = math.floor(4 + math.log2(side / 224 + 1e-8))
    return min(max(level, min_level), max_level) - min_level


def square_rois(sides) -> torch.Tensor:
    sides = torch.tensor(sides, dtype=torch.float32)
    zeros = torch.zeros_like(sides)
    return torch.stack([zeros, zeros + 3, zeros + 5, sides + 3, sides + 5], 1)


def build(paths, **gid):
    student, teacher = paths
    with pytest.warns(UserWarning, match='no checkpoint'):
        model = DistillationModel(
            student=dict(config=student), teacher=dict(config=teacher),
            components=[dict(type='densekd.GeneralInstanceDistill', name='gid', **gid)])
    return model.components['gid']


def test_author_levels_on_a_p3_first_pyramid():
    # box sides 60 / 150 / 300 / 480 px: P3 / P3 / P4 / P5 (every box under 224 px on P3)
    sides = [60., 150., 300., 480.]
    assert [detectron2_level(s, RETINA_STRIDES) for s in sides] == [0, 0, 1, 2]
    assert gid_roi_levels(square_rois(sides), RETINA_STRIDES).tolist() == [0, 0, 1, 2]
    # the level boundaries 224 * 2**k and the clamps at both ends
    edges = [1., 223., 224., 447., 448., 895., 896., 1791., 1792., 5000.]
    want = [detectron2_level(s, RETINA_STRIDES) for s in edges]
    assert want == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert gid_roi_levels(square_rois(edges), RETINA_STRIDES).tolist() == want


def test_author_levels_on_a_p2_first_pyramid():
    # the same boxes on P2-P6: P2 / P3 / P4 / P5 (the 60 px box is no longer clamped up)
    sides = [60., 150., 300., 480.]
    assert [detectron2_level(s, RPN_STRIDES) for s in sides] == [0, 1, 2, 3]
    assert gid_roi_levels(square_rois(sides), RPN_STRIDES).tolist() == [0, 1, 2, 3]
    edges = [1., 111., 112., 223., 224., 895., 896., 5000.]
    want = [detectron2_level(s, RPN_STRIDES) for s in edges]
    assert want == [0, 0, 1, 1, 2, 3, 4, 4]
    assert gid_roi_levels(square_rois(edges), RPN_STRIDES).tolist() == want


@pytest.mark.parametrize('strides', [RETINA_STRIDES, RPN_STRIDES, (16, 32, 64)])
def test_author_rule_is_mmdets_at_14_times_the_first_stride(strides):
    # random non-square boxes: detectron2's rule, and mmdet's extractor at 14 * strides[0]
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    wh = torch.exp(torch.rand(200, 2, generator=g) * 8)          # 1 .. 2981 px
    rois = torch.cat([torch.zeros(200, 1), xy, xy + wh], 1)
    got = gid_roi_levels(rois, strides)
    sides = ((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2])).double().sqrt()
    want = [detectron2_level(side, strides) for side in sides.tolist()]
    assert got.tolist() == want
    assert len(set(want)) == len(strides)                         # every level is hit
    extractor = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7), out_channels=8,
        featmap_strides=list(strides), finest_scale=14 * strides[0])
    assert got.tolist() == extractor.map_roi_levels(rois, len(strides)).tolist()


def test_explicit_finest_scale_is_mmdets_rule():
    # floor(log2(side / 56 + 1e-6)) clamped to [0, 4]: one level finer than the author's
    sides = [60., 150., 300., 480.]
    assert gid_roi_levels(square_rois(sides), RETINA_STRIDES, 56).tolist() == [0, 1, 2, 3]
    assert gid_roi_levels(square_rois(sides), RETINA_STRIDES, 112).tolist() == [0, 0, 1, 2]


@pytest.mark.parametrize('strides', [(8, 16, 48), (6, 12, 24), (8, 32)])
def test_author_rule_needs_a_power_of_two_pyramid(strides):
    with pytest.raises(ValueError, match=r'powers of two.*Pass finest_scale='):
        gid_roi_levels(square_rois([100.]), strides)
    assert gid_roi_levels(square_rois([100.]), strides, 56).tolist() == [0]


def test_component_pools_each_gi_on_the_authors_level(det_paths):
    # toy RetinaNet pair (P3-P7): the default pools every GI from the level detectron2's
    # ROIPooler gives it, with ROIAlignV2 (aligned, sampling ratio 2), 10 x 10
    comp = build(det_paths)
    assert comp.finest_scale is None and comp.level_strides == RETINA_STRIDES
    sides = [60., 150., 300., 480.]
    rois = square_rois(sides)
    assert comp.map_roi_levels(rois, 5).tolist() == [0, 0, 1, 2]
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(1, 16, 640 // s, 640 // s, generator=g) for s in RETINA_STRIDES]
    s_roi, t_roi = comp.pool(feats, feats, rois)
    for i, side in enumerate(sides):
        lvl = detectron2_level(side, RETINA_STRIDES)
        want = roi_align(feats[lvl], rois[i:i + 1], (10, 10), 1 / RETINA_STRIDES[lvl], 2,
                         'avg', True)
        torch.testing.assert_close(s_roi[i:i + 1], want)
        torch.testing.assert_close(t_roi[i:i + 1], want)


def test_component_on_an_rpn_uses_the_p2_first_levels(repo):
    paths = tuple(f'{repo}/configs/toy/faster-rcnn_r{d}-w{w}_fpn_24e_toy.py'
                  for d, w in ((18, 16), (34, 32)))
    comp = build(paths, head='rpn')
    assert comp.level_strides == RPN_STRIDES
    assert comp.map_roi_levels(square_rois([60., 150., 300., 480.]), 5).tolist() == [0, 1, 2, 3]


def test_component_refuses_a_non_pyramid_only_without_finest_scale(det_paths):
    student, teacher = det_paths
    models = []
    for path in (student, teacher):
        model = Config.fromfile(path).model
        model.bbox_head.anchor_generator.strides = [8, 16, 32, 64, 96]   # not a 2x pyramid
        models.append(dict(model=model, scope='mmdet'))
    with pytest.warns(UserWarning, match='no checkpoint'), \
            pytest.raises(ValueError, match='Pass finest_scale='):
        DistillationModel(student=models[0], teacher=models[1], components=[
            dict(type='densekd.GeneralInstanceDistill', name='gid')])
