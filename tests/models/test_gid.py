"""GID: the GISM on hand-made score maps, the three losses against closed forms written
here in plain torch, the level mapping, and the component on toy detector pairs."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmcv.ops import roi_align
from mmengine.config import Config
from mmengine.structures import InstanceData

from densekd.models import (
    DenseHeadReader,
    DistillationModel,
    GeneralInstanceSelector,
    gid_feature_loss,
    gid_relation_loss,
    gid_response_loss,
)

# -- GISM ---------------------------------------------------------------------------------
# Level 0 has 4 priors, level 1 has 2; two classes; one 100 x 100 image.
T_PROBS = [torch.tensor([[[0.9, 0.1], [0.2, 0.3], [0.5, 0.5], [0.3, 0.0]]]),
           torch.tensor([[[0.1, 0.1], [0.95, 0.0]]])]
S_PROBS = [torch.tensor([[[0.1, 0.2], [0.2, 0.9], [0.5, 0.1], [0.0, 0.3]]]),
           torch.tensor([[[0.6, 0.1], [0.0, 0.0]]])]
# paper scores max_c|Pt-Ps|: 0.8, 0.6, 0.4, 0.3 | 0.5, 0.95
# author scores |max Pt - max Ps|: 0.7, 0.6, 0.0, 0.0 | 0.5, 0.95
BOX_A = [0., 0., 20., 20.]          # teacher box of prior 0
BOX_B = [2., 0., 22., 20.]          # student box of prior 1, IoU(A, B) = 360/440
BOX_C = [40., 40., 60., 60.]        # student box of prior 2, disjoint
BOX_D = [1., 1., 21., 21.]          # student box of prior 4 (level 1), IoU(A, D) = 361/439
BOX_E = [-10., 80., 30., 120.]      # teacher box of prior 5, clipped to [0, 80, 30, 100]
FAR = [90., 0., 99., 9.]            # the boxes of the less confident side, never taken
T_BOXES = [torch.tensor([[BOX_A, FAR, FAR, FAR]]), torch.tensor([[FAR, BOX_E]])]
S_BOXES = [torch.tensor([[FAR, BOX_B, BOX_C, FAR]]), torch.tensor([[BOX_D, FAR]])]


def select(**kwargs):
    return GeneralInstanceSelector(**kwargs)(T_PROBS, S_PROBS, T_BOXES, S_BOXES, [(100, 100)])


def test_gism_topk_per_level_then_nms_per_level():
    # per-level top 3 drops prior 3 (0.3); NMS per level: B (0.6) falls to A (0.8), D (level 1)
    # survives although it overlaps A; sorted by score: 5, 0, 4, 2.
    gi, = select(pre_nms_topk=3)
    assert gi.inds.tolist() == [5, 0, 4, 2]
    assert gi.levels.tolist() == [1, 0, 1, 0]
    assert gi.from_teacher.tolist() == [True, True, False, False]
    torch.testing.assert_close(gi.scores, torch.tensor([0.95, 0.8, 0.5, 0.4]))
    torch.testing.assert_close(gi.bboxes, torch.tensor([[0., 80., 30., 100.], BOX_A, BOX_D,
                                                        BOX_C]))


def test_gism_nms_across_levels_and_k():
    assert select(pre_nms_topk=3, nms_across_levels=True)[0].inds.tolist() == [5, 0, 2]
    assert select(pre_nms_topk=3, num_instances=2)[0].inds.tolist() == [5, 0]
    # K larger than the candidates: all survivors; without the top-k prior 3 survives too
    assert select(pre_nms_topk=3, num_instances=100)[0].inds.tolist() == [5, 0, 4, 2]
    assert select(num_instances=100)[0].inds.tolist() == [5, 0, 4, 2, 3]


def test_gism_author_score_and_threshold():
    gi, = select(score_mode='author', score_thr=0.0)     # priors 2 and 3 score exactly 0
    assert gi.inds.tolist() == [5, 0, 4]
    torch.testing.assert_close(gi.scores, torch.tensor([0.95, 0.7, 0.5]))


def test_gism_zero_candidates_in_one_image():
    # image 2: teacher == student, every GI score is 0, nothing passes score_thr=0
    sel = GeneralInstanceSelector(score_thr=0.0)
    two = [torch.cat([t, s]) for t, s in zip(T_PROBS, S_PROBS)]
    gis = sel(two, [torch.cat([s, s]) for s in S_PROBS],
              [torch.cat([t, t]) for t in T_BOXES], [torch.cat([s, s]) for s in S_BOXES],
              [(100, 100)] * 2)
    assert gis[0].inds.tolist() == [5, 0, 4, 2, 3]
    assert len(gis[1]) == 0 and gis[1].bboxes.shape == (0, 4)


def test_gism_invalid_scores_take_no_top_k_place():
    # a NaN score (broken logits) and scores <= score_thr are dropped before the per-level
    # top-k: with pre_nms_topk=2 the two valid priors of level 0 are still candidates
    t = [T_PROBS[0].clone(), T_PROBS[1]]
    t[0][0, 0, 0] = float('nan')                              # prior 0: NaN score
    gi, = GeneralInstanceSelector(pre_nms_topk=2)(t, S_PROBS, T_BOXES, S_BOXES, [(100, 100)])
    assert 0 not in gi.inds.tolist() and {1, 2} <= set(gi.inds.tolist())
    assert torch.isfinite(gi.scores).all()


@pytest.mark.parametrize('across', [False, True])
def test_gism_early_stopped_nms_equals_full_nms(across):
    # thousands of random candidates on 3 levels: the grown-prefix NMS keeps exactly the
    # first K survivors of one full (per-level) NMS over all of them
    from mmcv.ops import batched_nms

    g = torch.Generator().manual_seed(0)
    n = 3000
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 4
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(n, generator=g)
    lvls = torch.randint(0, 3, (n,), generator=g)
    groups = torch.zeros_like(lvls) if across else lvls
    _, full = batched_nms(boxes, scores, groups, dict(type='nms', iou_threshold=0.3))
    for k in (1, 10, 50):
        sel = GeneralInstanceSelector(num_instances=k, nms_across_levels=across)
        got = sel._nms_top_k(boxes, scores, groups)
        assert got.tolist() == full[:k].tolist()
    assert len(GeneralInstanceSelector(num_instances=10 ** 5)._nms_top_k(
        boxes, scores, groups)) == len(full)
    assert GeneralInstanceSelector()._nms_top_k(boxes[:0], scores[:0], groups[:0]).numel() == 0


def full_nms_reference(t_probs, s_probs, boxes_t, boxes_s, shape, k, topk, thr, min_size):
    """The GISM of one image the plain way: every prior scored and decoded, per-level
    top-k, clip, size filter, one full per-level NMS, the first K survivors."""
    from mmcv.ops import batched_nms
    score = (t_probs - s_probs).abs().max(-1).values
    from_t = t_probs.max(-1).values > s_probs.max(-1).values
    boxes = torch.where(from_t[:, None], boxes_t, boxes_s)
    cand, offset = [], 0
    for lvl, size in enumerate(LEVEL_SIZES):
        idx = score[offset:offset + size].topk(min(size, topk)).indices + offset
        cand.append(torch.stack([idx, torch.full_like(idx, lvl)], 1))
        offset += size
    cand = torch.cat(cand)
    cand = cand[score[cand[:, 0]] > thr]
    b = boxes[cand[:, 0]]
    b = torch.stack([b[:, 0].clamp(0, shape[1]), b[:, 1].clamp(0, shape[0]),
                     b[:, 2].clamp(0, shape[1]), b[:, 3].clamp(0, shape[0])], 1)
    ok = (b[:, 2] - b[:, 0] > min_size) & (b[:, 3] - b[:, 1] > min_size)
    cand, b = cand[ok], b[ok]
    if not len(cand):
        return []
    _, keep = batched_nms(b, score[cand[:, 0]], cand[:, 1],
                          dict(type='nms', iou_threshold=0.3))
    return cand[keep[:k], 0].tolist()


LEVEL_SIZES = (400, 100, 25)


@pytest.mark.parametrize('k,topk', [(10, 3000), (10, 100), (10, 50), (40, 60), (1, 5)])
def test_batched_lazy_selection_equals_full_nms_per_image(k, topk, monkeypatch):
    # four images in one call: crowded boxes (the lazy NMS needs several rounds), sparse
    # boxes, boxes past the image and one image without any candidate over the threshold;
    # each equals the full per-image selection written out above, in order
    g = torch.Generator().manual_seed(1)
    total = sum(LEVEL_SIZES)
    t_probs = torch.rand(4, total, 3, generator=g)
    s_probs = torch.rand(4, total, 3, generator=g)
    s_probs[3] = t_probs[3]                                   # scores 0: nothing passes
    xy = torch.rand(4, 2, total, 2, generator=g) * 100
    wh = torch.rand(4, 2, total, 2, generator=g) * torch.tensor([20., 8., 80., 30.])[:, None,
                                                                                   None, None]
    xy[0] = xy[0] * 0.3 + 10                                  # crowded: few survive NMS
    wh[0] += 50
    xy[2] -= 40                                               # many boxes clipped or empty
    boxes = torch.cat([xy, xy + wh], -1)                      # (4, 2 models, A, 4)
    shapes = [(100, 100), (100, 90), (80, 100), (100, 100)]
    sel = GeneralInstanceSelector(num_instances=k, pre_nms_topk=topk, min_size=1.0,
                                  score_thr=0.0)
    from densekd.models.selectors import general_instance
    rounds, nms = [], general_instance.batched_nms
    monkeypatch.setattr(general_instance, 'batched_nms',
                        lambda b, *a: rounds.append(len(b)) or nms(b, *a))
    split = list(LEVEL_SIZES)
    got = sel(list(t_probs.split(split, 1)), list(s_probs.split(split, 1)),
              list(boxes[:, 0].split(split, 1)), list(boxes[:, 1].split(split, 1)), shapes)
    lengths = []
    for i, gi in enumerate(got):
        want = full_nms_reference(t_probs[i], s_probs[i], boxes[i, 0], boxes[i, 1],
                                  shapes[i], k, topk, 0.0, 1.0)
        assert gi.inds.tolist() == want
        assert gi.bboxes.shape == (len(want), 4)
        lengths.append(len(want))
    # the crowded image has only a few survivors after growing to all its candidates
    assert lengths[1:] == [k, k, 0] and 0 < lengths[0] <= min(k, 4)
    assert (len(rounds) > 1) == (k == 10)  # rounds: all four images together in each
    if topk == 3000:
        assert rounds == [194, 320, 525]  # candidates per round


def test_gid_one_decode_equals_one_decode_per_model(det_paths, det_batch, monkeypatch):
    # both RetinaNet heads use the same coder: one decode of the mixed rows gives the same
    # boxes (bitwise) and GIs as decoding the teacher's and the student's rows with their
    # own heads
    model = build(det_paths)
    gid = model.components['gid']
    data = model.data_preprocessor(det_batch(), True)
    assert gid.reader.same_decoding(gid.reader.head(gid.student_model),
                                    gid.reader.head(gid.teacher_model))
    metas = [d.metainfo for d in data['data_samples']]
    taps, box_fns = {}, []

    def record(self, student, teacher, data_samples=None):
        taps['s'], taps['t'] = student, teacher
        return {}
    monkeypatch.setattr(type(gid), 'forward', record)
    model.loss(**data)
    monkeypatch.undo()
    select = gid.selector.select
    monkeypatch.setattr(gid.selector, 'select',
                        lambda t, s, boxes_at, *a: box_fns.append(boxes_at) or select(t, s,
                                                                                      boxes_at,
                                                                                      *a))
    one = gid.select(taps['s'], taps['t'], metas)
    monkeypatch.setattr(DenseHeadReader, 'same_decoding', lambda *a: False)
    two = gid.select(taps['s'], taps['t'], metas)
    assert sum(len(g) for g in one) > 0
    for a, b in zip(one, two):
        assert a.inds.tolist() == b.inds.tolist()
        assert a.from_teacher.tolist() == b.from_teacher.tolist()
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=0, atol=0)
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 2, (200,), generator=g)
    num_priors = sum(x.shape[-2] * x.shape[-1] * 9 for x in taps['s'][gid.cls_tap])
    inds = torch.randint(0, num_priors, (200,), generator=g)  # priors of every level
    from_t = torch.rand(200, generator=g) > 0.5
    torch.testing.assert_close(box_fns[0](imgs, inds, from_t), box_fns[1](imgs, inds, from_t),
                               rtol=0, atol=0)


# -- losses -------------------------------------------------------------------------------
def test_feature_loss_closed_form_and_empty():
    s, t = torch.ones(2, 3, 2, 2, requires_grad=True), torch.zeros(2, 3, 2, 2)
    assert gid_feature_loss(s, t).item() == 24 / (2 * 4)     # channels summed, mean R*h*w
    empty = torch.zeros(0, 3, 2, 2, requires_grad=True)
    loss = gid_feature_loss(empty, empty.detach())
    loss.backward()
    assert loss.item() == 0 and empty.grad is not None


def rkd_reference(s, t, beta=1.0):
    """RKD distance loss with explicit loops, as in the paper."""
    def psi(x):
        d = [[(x[i] - x[j]).norm() if i != j else x.new_zeros(()) for j in range(len(x))]
             for i in range(len(x))]
        d = torch.stack([torch.stack(r) for r in d])
        return d / (d.sum() / (len(x) * (len(x) - 1)))
    r = len(s)
    return F.smooth_l1_loss(psi(s.flatten(1)), psi(t.flatten(1)), beta=beta,
                            reduction='sum') / (r * r - r)


def test_relation_loss_closed_form():
    # teacher 0, 1, 3 -> psi 1/2, 3/2, 1; student 0, 2, 4 -> psi 3/4, 3/2, 3/4;
    # two pairs differ by 1/4, both ways: 4 * 0.5 * (1/4)^2 / (9 - 3)
    t = torch.tensor([[0.], [1.], [3.]])
    s = torch.tensor([[0.], [2.], [4.]])
    torch.testing.assert_close(gid_relation_loss(s, t), torch.tensor(0.125 / 6))
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 4, 3, 3, generator=g), torch.randn(6, 8, 3, 3, generator=g)
    torch.testing.assert_close(gid_relation_loss(s, t), rkd_reference(s, t))


def test_relation_loss_order_invariant_zero_on_equal_and_per_image():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    ids = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    base = gid_relation_loss(s, t, ids)
    for perm in (torch.tensor([6, 2, 0, 4, 1, 3, 5]), torch.arange(6, -1, -1)):
        torch.testing.assert_close(gid_relation_loss(s[perm], t[perm], ids[perm]), base)
        torch.testing.assert_close(gid_relation_loss(s[perm], t[perm]), gid_relation_loss(s, t))
    assert gid_relation_loss(t, t, ids).item() < 1e-7
    assert gid_relation_loss(t * 3.0, t).item() < 1e-7        # scale-free (normalised)
    per_image = (rkd_reference(s[:3], t[:3]) + rkd_reference(s[3:], t[3:])) / 2
    torch.testing.assert_close(base, per_image)
    # an image with fewer than 3 instances gives nothing; none at all gives a graph zero
    torch.testing.assert_close(gid_relation_loss(s[:5], t[:5], ids[:5]),
                               rkd_reference(s[:3], t[:3]))
    few = s[:2].clone().requires_grad_()
    loss = gid_relation_loss(few, t[:2], ids[:2])
    loss.backward()
    assert loss.item() == 0 and few.grad is not None


def test_relation_loss_per_image_at_once_values_and_gradients():
    # three images of 4, 2 (too few: no loss) and 5 instances, interleaved, ids not 0..n-1:
    # the all-at-once computation equals the explicit per-image loops, gradients included
    g = torch.Generator().manual_seed(2)
    s = torch.randn(11, 3, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(11, 6, 2, 2, generator=g, dtype=torch.float64)
    ids = torch.tensor([7, 3, 7, 9, 9, 7, 9, 3, 9, 7, 9])
    got = gid_relation_loss(s, t, ids)
    want = (rkd_reference(s[ids == 7], t[ids == 7]) + rkd_reference(s[ids == 9], t[ids == 9])) / 2
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g_got, = torch.autograd.grad(got, s)
    g_want, = torch.autograd.grad(want, s)
    torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-12)
    assert g_got[ids == 3].abs().sum() == 0
    # min_instances below 2: an image with one instance has no pair and still gives nothing
    one = torch.tensor([7, 3, 7, 9, 9, 7, 9, 5, 9, 7, 9])  # image 5 has one instance
    torch.testing.assert_close(gid_relation_loss(s, t, one, min_instances=1),
                               gid_relation_loss(s, t, one, min_instances=2))


def test_response_loss_exact():
    s_cls = torch.tensor([[0., 0.], [9., -9.], [0., 0.]], requires_grad=True)
    t_cls = torch.tensor([[0., 0.], [-9., 9.], [0., 0.]])
    s_reg = torch.tensor([[1., 2., 3., 4.], [5., 5., 5., 5.], [0., 0., 0., 0.]])
    t_reg = torch.zeros(3, 4)
    mask = torch.tensor([True, False, True])
    cls, reg = gid_response_loss(s_cls, t_cls, s_reg, t_reg, mask)
    # BCE(logit 0, target 1/2) = ln 2 per class; 2 priors x 2 classes / 2 priors
    torch.testing.assert_close(cls, torch.tensor(2 * math.log(2)))
    assert reg.item() == 10 / 2
    cls, reg = gid_response_loss(s_cls, t_cls, s_reg, t_reg, torch.zeros(3, dtype=torch.bool))
    (cls + reg).backward()
    assert cls.item() == 0 and reg.item() == 0 and s_cls.grad is not None


# -- the component on toy pairs -----------------------------------------------------------
def build(det_paths, teacher_width=None, **gid):
    student, teacher = det_paths
    teacher = dict(config=teacher)
    if teacher_width is not None:                       # an FPN of another width
        model = Config.fromfile(teacher['config']).model
        model.neck.out_channels = model.bbox_head.in_channels = teacher_width
        teacher = dict(model=model, scope='mmdet')
    with pytest.warns(UserWarning, match='no checkpoint'):
        model = DistillationModel(
            student=dict(config=student), teacher=teacher,
            components=[dict(type='densekd.GeneralInstanceDistill', name='gid', **gid)])
    model.init_weights()
    return model.train()


def test_level_mapping_and_pooling(det_paths):
    # an explicit finest_scale: mmdet's rule (the default, the author's rule, is tested in
    # test_gid_levels.py)
    comp = build(det_paths, finest_scale=56).components['gid']
    sides = torch.tensor([50., 111., 113., 230., 500., 2000.])   # sqrt(w h)
    rois = torch.stack([torch.zeros(6), torch.zeros(6), torch.zeros(6), sides, sides], 1)
    # mmdet: floor(log2(scale / 56)) clamped to [0, 4]
    assert comp.map_roi_levels(rois, 5).tolist() == [0, 0, 1, 2, 3, 4]
    feats = [torch.randn(1, 64, 128 // s, 128 // s) for s in (8, 16, 32, 64, 128)]
    roi = torch.tensor([[0., 10., 20., 250., 260.]])          # side 240 -> level 2 (stride 32)
    expected = roi_align(feats[2], roi, (10, 10), 1 / 32, 2, 'avg', True)
    s_roi, t_roi = comp.pool(feats, feats, roi)
    torch.testing.assert_close(s_roi, expected)
    torch.testing.assert_close(t_roi, expected)


@pytest.mark.parametrize('max_area', [4096, 16])
def test_pool_equals_mmdet_single_roi_extractor(det_paths, max_area):
    # both models' pooled GIs equal mmdet's extractor with mmcv's RoIAlign, RoIs on every
    # level of two images; max_area=16 sends the larger maps to mmcv's kernel
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    comp = build(det_paths, finest_scale=56).components['gid']
    for layer in comp.roi_layers:
        layer.max_area = max_area
    strides = (8, 16, 32, 64, 128)
    g = torch.Generator().manual_seed(5)
    s_feats = [torch.randn(2, 64, 512 // s, 512 // s, generator=g, requires_grad=True)
               for s in strides]
    t_feats = [torch.randn(2, 32, 512 // s, 512 // s, generator=g) for s in strides]
    xy = torch.rand(12, 2, generator=g) * 300
    wh = torch.rand(12, 2, generator=g) * 480 + 2
    rois = torch.cat([(torch.arange(12) % 2)[:, None].float(), xy, xy + wh], 1)
    assert len(comp.map_roi_levels(rois, 5).unique()) >= 3
    s_roi, t_roi = comp.pool(s_feats, t_feats, rois)
    assert not t_roi.requires_grad
    layer = dict(type='RoIAlign', output_size=10, sampling_ratio=2, aligned=True)
    for feats, got in ((s_feats, s_roi), (t_feats, t_roi)):
        ref = SingleRoIExtractor(roi_layer=layer, out_channels=feats[0].shape[1],
                                 featmap_strides=list(strides), finest_scale=56)
        want = ref(tuple(feats), rois)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    upstream = torch.randn_like(s_roi)
    got_g = torch.autograd.grad(s_roi, s_feats, upstream, allow_unused=True)  # unused levels
    want_g = torch.autograd.grad(ref_s := SingleRoIExtractor(
        roi_layer=layer, out_channels=64, featmap_strides=list(strides),
        finest_scale=56)(tuple(s_feats), rois), s_feats, upstream)
    assert ref_s.shape == s_roi.shape
    for feat, a, b in zip(s_feats, got_g, want_g):
        torch.testing.assert_close(torch.zeros_like(feat) if a is None else a, b,
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('num_items,teacher_width', [(None, None), ([0, 0], 32)])
def test_end_to_end_retinanet(det_paths, det_batch, num_items, teacher_width):
    # second case: no ground truth (GID does not use it) and a 32-wide teacher FPN
    model = build(det_paths, teacher_width)
    adapter = model.components['gid'].adapter
    assert (adapter is None) == (teacher_width is None)
    losses = model.loss(**model.data_preprocessor(det_batch(num_items=num_items), True))
    keys = {f'distill.gid.loss_{k}' for k in
            ('feature', 'relation', 'response_cls', 'response_reg')}
    assert keys <= set(losses)
    assert all(torch.isfinite(losses[k]) and losses[k] > 0 for k in keys)
    sum(losses[k] for k in keys).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    grads = {n for n, p in model.student.named_parameters() if p.grad is not None}
    assert {'neck.fpn_convs.0.conv.weight', 'bbox_head.retina_cls.weight',
            'bbox_head.retina_reg.weight'} <= grads
    if adapter is not None:
        assert all(p.grad is not None for p in adapter.parameters())


def test_end_to_end_zero_instances_and_weights_off(det_paths, det_batch):
    model = build(det_paths, selector=dict(type='densekd.GeneralInstanceSelector',
                                           score_thr=1.0), relation_weight=0.0)
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    gid = {k: v for k, v in losses.items() if k.startswith('distill.gid.')}
    assert sorted(gid) == ['distill.gid.loss_feature', 'distill.gid.loss_response_cls',
                           'distill.gid.loss_response_reg']
    assert all(v.item() == 0 for v in gid.values())
    sum(gid.values()).backward()                               # connected, no NaN
    assert all(torch.isfinite(p.grad).all() for p in model.student.parameters()
               if p.grad is not None)


@pytest.mark.parametrize('head', ['fcos', 'gfl', 'rpn'])
def test_end_to_end_other_heads(repo, det_batch, head):
    arch = 'faster-rcnn' if head == 'rpn' else head
    paths = tuple(f'{repo}/configs/toy/{arch}_r{d}-w{w}_fpn_24e_toy.py'
                  for d, w in ((18, 16), (34, 32)))
    model = build(paths, head=head)
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    gid = {k: v for k, v in losses.items() if k.startswith('distill.gid.')}
    assert len(gid) == 4 and all(torch.isfinite(v) for v in gid.values())
    if head == 'rpn':   # the RPN's objectness and deltas are distilled, the RoI head is not
        sum(gid.values()).backward()
        grads = {n for n, p in model.student.named_parameters() if p.grad is not None}
        assert {'rpn_head.rpn_cls.weight', 'rpn_head.rpn_reg.weight'} <= grads
        assert not any(n.startswith('roi_head.') for n in grads)
        assert all(p.grad is None for p in model.teacher.parameters())


# -- reading heads ------------------------------------------------------------------------
ANCHORS = dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4, scales_per_octave=1,
               strides=[8, 16])
HEADS = {
    'retina': dict(type='RetinaHead', anchor_generator=ANCHORS, train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)),
    'atss': dict(type='ATSSHead', anchor_generator=ANCHORS),
    'fcos': dict(type='FCOSHead', strides=[8, 16], regress_ranges=((-1, 64), (64, 1e8)),
                 norm_on_bbox=True),
    'gfl': dict(type='GFLHead', anchor_generator=ANCHORS),
}


def small_head(kind):
    from mmdet.registry import MODELS
    cfg = dict(HEADS[kind], num_classes=5, in_channels=8, feat_channels=32, stacked_convs=1)
    head = MODELS.build(cfg)
    for i, scale in enumerate(getattr(head, 'scales', [])):
        scale.scale.data.fill_(1.5 + i)       # the reader must apply them
    return head


@pytest.mark.parametrize('kind', sorted(HEADS))
def test_reader_matches_head_forward(kind):
    head = small_head(kind).train()
    reader = DenseHeadReader(kind)
    raws = {tap: [] for tap in DenseHeadReader.TAPS[kind]}
    for tap, rec in raws.items():
        head.get_submodule(tap.split('.', 1)[1]).register_forward_hook(
            lambda m, a, out, rec=rec: rec.append(out))
    feats = [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]
    cls_scores, bbox_preds = head(feats)[:2]
    cls_tap, reg_tap = DenseHeadReader.TAPS[kind]
    for got, want in zip(reader.logits(head, raws[cls_tap]), cls_scores):
        torch.testing.assert_close(got, want.permute(0, 2, 3, 1).reshape(2, -1, 5))
    for got, want in zip(reader.regression(head, raws[reg_tap]), bbox_preds):
        want = want.permute(0, 2, 3, 1).reshape(2, -1, want.shape[1])
        if kind == 'gfl':                    # expected distances of the distribution
            want = head.integral(want).reshape(2, -1, 4)
        torch.testing.assert_close(got, want)
    # all levels concatenated in one copy: the same values
    assert torch.equal(reader.logits_all(head, raws[cls_tap]),
                       torch.cat(reader.logits(head, raws[cls_tap]), 1))
    assert torch.equal(reader.regression_all(head, raws[reg_tap]),
                       torch.cat(reader.regression(head, raws[reg_tap]), 1))


@pytest.mark.parametrize('kind', sorted(HEADS))
def test_lazy_decode_and_selection_equal_full_decode(kind):
    # decode_at on a subset equals decode on all priors, and the selection that decodes
    # only what the NMS looks at equals the selection over all decoded boxes
    head = small_head(kind).eval()
    reader = DenseHeadReader(kind)
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    priors = reader.priors(head, sizes, torch.device('cpu'))
    g = torch.Generator().manual_seed(0)
    regs = [[torch.rand(2, len(p), 4, generator=g) * 2 - float(kind in ('retina', 'atss'))
             for p in priors]
            for _ in range(2)]
    probs = [[torch.rand(2, len(p), 5, generator=g) for p in priors] for _ in range(2)]
    full = [reader.decode(head, priors, r) for r in regs]
    strides = torch.cat([p.new_full((len(p),), float(s))
                         for p, s in zip(priors, reader.strides(head))])
    inds = torch.tensor([0, 5, 255, 256, 300, len(strides) - 1])
    torch.testing.assert_close(
        reader.decode_at(head, torch.cat(priors), torch.cat(regs[0], 1)[1], strides, inds),
        torch.cat(full[0], 1)[1, inds])
    sel = GeneralInstanceSelector(num_instances=4, pre_nms_topk=100)
    want = sel(probs[0], probs[1], full[0], full[1], [(128, 128)] * 2)

    def boxes_at(imgs, idx, from_t):
        # per candidate: image imgs[j], prior idx[j], the teacher's box where from_t[j]
        rows = [torch.where(f, reader.decode_at(head, torch.cat(priors),
                                                torch.cat(regs[0], 1)[i], strides, j[None]),
                            reader.decode_at(head, torch.cat(priors),
                                             torch.cat(regs[1], 1)[i], strides, j[None]))
                for i, j, f in zip(imgs.tolist(), idx, from_t)]
        return torch.cat(rows) if rows else torch.zeros(0, 4)

    got = sel.select(probs[0], probs[1], boxes_at, [(128, 128)] * 2)
    # the same probabilities handed over level-concatenated, with the level sizes
    level_sizes = [len(p) for p in priors]
    flat = sel.select(torch.cat(probs[0], 1), torch.cat(probs[1], 1), boxes_at,
                      [(128, 128)] * 2, level_sizes)
    for a, b, c in zip(got, want, flat):
        assert len(a) == 4 and a.inds.tolist() == b.inds.tolist() == c.inds.tolist()
        torch.testing.assert_close(a.bboxes, b.bboxes)
        torch.testing.assert_close(c.bboxes, b.bboxes)
        assert a.from_teacher.tolist() == b.from_teacher.tolist() == c.from_teacher.tolist()
        assert a.levels.tolist() == c.levels.tolist()
    with pytest.raises(ValueError, match='do not span the levels'):
        sel.select(torch.cat(probs[0], 1), torch.cat(probs[1], 1), boxes_at,
                   [(128, 128)] * 2, level_sizes[:1])


def test_reader_rpn_matches_head_forward_and_objectness_assignment():
    from mmdet.registry import MODELS
    head = MODELS.build(dict(
        type='RPNHead', in_channels=8, feat_channels=16, num_classes=1,
        anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[1.0],
                              strides=[8, 16]),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                     neg_iou_thr=0.4, min_pos_iou=0),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1,
                       pos_weight=-1, debug=False))).train()
    reader = DenseHeadReader('rpn')
    reader.check(head, 'student')
    raws = {tap: [] for tap in DenseHeadReader.TAPS['rpn']}
    for tap, rec in raws.items():
        head.get_submodule(tap.split('.', 1)[1]).register_forward_hook(
            lambda m, a, out, rec=rec: rec.append(out))
    feats = [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]
    cls_scores, bbox_preds = head(feats)
    cls_tap, reg_tap = DenseHeadReader.TAPS['rpn']
    for got, want in zip(reader.logits(head, raws[cls_tap]), cls_scores):
        torch.testing.assert_close(got, want.permute(0, 2, 3, 1).reshape(2, -1, 1))
    for got, want in zip(reader.regression(head, raws[reg_tap]), bbox_preds):
        torch.testing.assert_close(got, want.permute(0, 2, 3, 1).reshape(2, -1, 4))
    # positive objectness where IoU >= 0.5 with a GI: anchor 37 and its 4 neighbours
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    anchors = torch.cat(reader.priors(head, sizes, torch.device('cpu')))
    meta = dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))
    mask = reader.assign(head, sizes, [anchors[[37]], anchors[:0]], [meta, meta])
    assert mask[0, 37] and mask[0].sum() == 5 and not mask[1].any()


def test_reader_assign_uses_the_head_assigner():
    head = small_head('retina').train()
    reader = DenseHeadReader('retina')
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    anchors = torch.cat(reader.priors(head, sizes, torch.device('cpu')))
    meta = dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))
    mask = reader.assign(head, sizes, [anchors[[37, 300]], anchors[:0]], [meta, meta])
    assert mask.shape == (2, 320)
    # MaxIoUAssigner: positive where IoU >= 0.5 with a box: anchor 37 and its 4 axis
    # neighbours (8 px shift of a 32 px anchor: IoU 0.6), anchor 300 (level 1) and the 4
    # level-0 anchors 4 px off its centre (IoU 0.62); nothing for an image without boxes
    boxes = anchors[[37, 300]]
    lt = torch.max(anchors[:, None, :2], boxes[None, :, :2])
    rb = torch.min(anchors[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = (anchors[:, 2:] - anchors[:, :2]).prod(-1)
    iou = inter / (area[:, None] + area[[37, 300]][None] - inter)
    assert mask[0].tolist() == (iou.max(1).values >= 0.5).tolist()
    assert mask[0, 37] and mask[0, 300] and mask[0].sum() == 10 and not mask[1].any()


def test_wrong_head_type_is_reported():
    head = small_head('retina')
    DenseHeadReader('retina').check(head, 'student')
    with pytest.raises(TypeError, match="head='fcos' expects a FCOSHead"):
        DenseHeadReader('fcos').check(head, 'student')
    with pytest.raises(TypeError, match="reads the detector's rpn_head, which the teacher"):
        DenseHeadReader('rpn').check(None, 'teacher')


@pytest.mark.parametrize('kind', ['retina', 'rpn'])
def test_reader_direct_assign_equals_get_targets(kind):
    # with a PseudoSampler the reader skips get_targets (assigner only): same positives
    from mmdet.registry import MODELS
    if kind == 'rpn':
        head = MODELS.build(dict(
            type='RPNHead', in_channels=8, feat_channels=16, num_classes=1,
            anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0],
                                  strides=[8, 16]),
            train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                         neg_iou_thr=0.4, min_pos_iou=0.3),
                           sampler=dict(type='PseudoSampler'), allowed_border=0,
                           pos_weight=-1, debug=False)))
    else:
        head = small_head(kind)
    reader = DenseHeadReader(kind)
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 2, generator=g) * 100
    boxes = [torch.cat([xy, xy + torch.rand(7, 2, generator=g) * 60 + 4], 1), xy[:0].repeat(1, 2)]
    metas = [dict(img_shape=(120, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))] * 2
    got = reader.assign(head, sizes, boxes, metas)
    gts = [InstanceData(bboxes=b, labels=b.new_zeros(len(b), dtype=torch.long)) for b in boxes]
    anchors, valid = head.get_anchors(sizes, metas, device='cpu')
    want = torch.cat(head.get_targets(anchors, valid, gts, metas)[0], 1) < head.num_classes
    assert got.tolist() == want.tolist() and got[0].sum() > 7 and not got[1].any()


def rpn_head(sampler):
    from mmdet.registry import MODELS
    return MODELS.build(dict(
        type='RPNHead', in_channels=8, feat_channels=16, num_classes=1,
        anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0],
                              strides=[8, 16]),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                                     min_pos_iou=0.3),
                       sampler=sampler, allowed_border=-1, pos_weight=-1, debug=False)))


@pytest.mark.parametrize('num', [256, 8])
def test_reader_direct_assign_with_random_sampler(num, monkeypatch):
    # an RPN's RandomSampler: at most num * pos_fraction positives per image, a uniform
    # subset of the assigner's; with fewer positives than that, exactly get_targets' positives
    sampler = dict(type='RandomSampler', num=num, pos_fraction=0.5, neg_pos_ub=-1,
                   add_gt_as_proposals=False)
    head = rpn_head(sampler)
    reader = DenseHeadReader('rpn')
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 2, generator=g) * 100
    boxes = [torch.cat([xy, xy + torch.rand(7, 2, generator=g) * 60 + 4], 1), xy[:0].repeat(1, 2)]
    metas = [dict(img_shape=(120, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))] * 2
    gts = [InstanceData(bboxes=b, labels=b.new_zeros(len(b), dtype=torch.long)) for b in boxes]
    anchors, valid = head.get_anchors(sizes, metas, device='cpu')
    want = torch.cat(head.get_targets(anchors, valid, gts, metas)[0], 1) < head.num_classes
    all_positive = rpn_head(dict(type='PseudoSampler'))
    every = reader.assign(all_positive, sizes, boxes, metas)
    monkeypatch.setattr(type(head), 'get_targets', lambda *a, **k: pytest.fail('not direct'))
    torch.manual_seed(1)
    got = reader.assign(head, sizes, boxes, metas)
    if num == 256:
        assert got.tolist() == want.tolist() and 7 < got[0].sum() <= 128
    else:
        assert got.sum(dim=1).tolist() == [4, 0] and every[0].sum() > 4
        assert not (got & ~every).any()  # a subset of the assigner's positives
        torch.manual_seed(2)
        assert reader.assign(head, sizes, boxes, metas).tolist() != got.tolist()  # random
    head.sampler.add_gt_as_proposals = True  # GT boxes added as proposals: mmdet's path
    with pytest.raises(pytest.fail.Exception, match='not direct'):
        reader.assign(head, sizes, boxes, metas)


@pytest.mark.parametrize('assign_all', [True, False])
@pytest.mark.parametrize('min_pos_iou', [0.0, 0.3])
def test_batched_max_iou_positives_equal_the_assigner_per_image(assign_all, min_pos_iou):
    # the batched IoU path (gt_max_assign_all) and the per-image assigner loop (otherwise)
    # give get_targets' positives: ragged GT counts (3 images, one without boxes), a tiny
    # box whose best IoU is below min_pos_iou, boxes past the unpadded image (inside flags)
    from mmdet.registry import MODELS
    head = MODELS.build(dict(
        type='RPNHead', in_channels=8, feat_channels=16, num_classes=1,
        anchor_generator=dict(type='AnchorGenerator', scales=[4], ratios=[0.5, 1.0, 2.0],
                              strides=[8, 16]),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                                     min_pos_iou=min_pos_iou, gt_max_assign_all=assign_all),
                       sampler=dict(type='PseudoSampler'), allowed_border=0, pos_weight=-1,
                       debug=False)))
    reader = DenseHeadReader('rpn')
    assert DenseHeadReader._batched_max_iou(head.assigner) is assign_all
    sizes = [torch.Size((16, 16)), torch.Size((8, 8))]
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(9, 2, generator=g) * 110
    boxes = torch.cat([xy, xy + torch.rand(9, 2, generator=g) * 70 + 4], 1)
    boxes[0] = torch.tensor([60.0, 60.0, 61.5, 61.0])  # best IoU < 0.3 with any anchor
    # in image 0's padding: no inside anchor overlaps it, best IoU exactly 0 (with
    # min_pos_iou 0 mmdet then makes every zero-IoU inside anchor positive)
    padding_box = torch.tensor([[116.0, 104.0, 127.0, 127.0]])
    per_image = [torch.cat([boxes[:6], padding_box]), boxes[6:], boxes[:0]]
    metas = [dict(img_shape=(100, 112), pad_shape=(128, 128), batch_input_shape=(128, 128)),
             dict(img_shape=(128, 128), pad_shape=(128, 128), batch_input_shape=(128, 128)),
             dict(img_shape=(90, 128), pad_shape=(128, 128), batch_input_shape=(128, 128))]
    got = reader.assign(head, sizes, per_image, metas)
    gts = [InstanceData(bboxes=b, labels=b.new_zeros(len(b), dtype=torch.long))
           for b in per_image]
    anchors, valid = head.get_anchors(sizes, metas, device='cpu')
    want = torch.cat(head.get_targets(anchors, valid, gts, metas)[0], 1) < head.num_classes
    assert got.tolist() == want.tolist()
    assert got[0].any() and got[1].any() and not got[2].any()
    if min_pos_iou == 0.0 and assign_all:   # the quirk above: every inside anchor positive
        from mmdet.models.task_modules.prior_generators import anchor_inside_flags
        inside = anchor_inside_flags(torch.cat(anchors[0]), torch.cat(valid[0]), (100, 112), 0)
        assert got[0].tolist() == inside.tolist() and 0 < inside.sum() < len(inside)
    # the tiny box gets its best anchors only when its best IoU reaches min_pos_iou
    alone = reader.assign(head, sizes, [boxes[:1]], metas[1:2])
    best = head.assigner.iou_calculator(boxes[:1], torch.cat(anchors[1])).max()
    assert 0 < best < 0.3 and bool(alone.any()) is (min_pos_iou == 0.0)
