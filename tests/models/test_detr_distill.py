"""DETRDistill: losses (hand values, closed forms), selection, layer mapping, and the three
components on toy Deformable DETR, DINO and Conditional DETR in a DistillationModel."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from densekd.models.components.detr_distill_feature import select_target_queries
from densekd.models.components.detr_distill_logits import layer_pairs
from densekd.models.components.detr_io import clamp_to_image, head_predictions
from densekd.models.losses.detr_distill import (
    HungarianDistillLoss,
    TargetAwareFeatureLoss,
    binary_entropy,
    box_distill_losses,
    soft_bce_distill_loss,
    target_aware_feature_loss,
    target_aware_mask,
)
from densekd.registry import MODELS

COMPONENTS = [dict(type='densekd.DETRLogitsDistill', name='logits'),
              dict(type='densekd.DETRFeatureDistill', name='feature'),
              dict(type='densekd.DETRQueryPriorDistill', name='query')]


# -- losses -----------------------------------------------------------------------------
def test_soft_bce_zero_at_equality_and_reference_closed_form():
    p = torch.tensor([[0.9, 0.05, 0.3], [0.01, 0.5, 0.99]])
    x = torch.logit(p)
    assert soft_bce_distill_loss(x, p).item() == pytest.approx(0.0, abs=1e-6)
    # reference (no entropy subtraction): sum of the targets' entropies / avg_factor
    ref = soft_bce_distill_loss(x, p, subtract_entropy=False, avg_factor=2.0)
    assert ref.item() == pytest.approx(binary_entropy(p).sum().item() / 2, rel=1e-5)
    # one element by hand: softplus(x) - x p - H(p)
    xv, pv = 0.7, 0.2
    h = -(pv * math.log(pv) + (1 - pv) * math.log(1 - pv))
    expected = math.log1p(math.exp(xv)) - xv * pv - h
    got = soft_bce_distill_loss(torch.tensor([[xv]]), torch.tensor([[pv]]))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_soft_bce_gradient_is_that_of_bce():
    x = torch.randn(4, 3, requires_grad=True)
    p = torch.rand(4, 3)
    soft_bce_distill_loss(x, p).backward()
    torch.testing.assert_close(x.grad, torch.sigmoid(x.detach()) - p)


def test_empty_inputs_give_graph_keeping_zeros():
    x = torch.zeros(0, 5, requires_grad=True)
    b = torch.zeros(0, 4, requires_grad=True)
    loss = HungarianDistillLoss()(x, b, torch.zeros(0, 5), torch.zeros(0, 4), torch.zeros(0, 2))
    for value in loss.values():
        assert value.item() == 0.0 and value.requires_grad and not torch.isnan(value)


def test_box_losses_hand_values():
    s = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    t = torch.tensor([[0.5, 0.25, 0.5, 0.5]])
    l1, giou = box_distill_losses(s, t, torch.tensor([[200.0, 100.0]]))
    assert l1.item() == pytest.approx(0.25)
    assert giou.item() == pytest.approx(1 - 1 / 3, rel=1e-5)  # GIoU 1/3 (see test_matchers)


def test_teacher_background_is_down_weighted():
    # pair 0: confident teacher (max prob 0.9), pair 1: background teacher (max prob 0.02)
    t_prob = torch.tensor([[0.9, 0.1], [0.02, 0.01]])
    s_logit = torch.tensor([[0.0, 0.0], [2.0, 2.0]])
    s_box = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    t_box = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.7, 0.5, 0.2, 0.2]])
    wh = torch.tensor([[128.0, 128.0], [128.0, 128.0]])
    per_pair = (F.binary_cross_entropy_with_logits(s_logit, t_prob, reduction='none')
                - binary_entropy(t_prob)).sum(-1)
    l1_pair = (s_box - t_box).abs().sum(-1)
    paper = HungarianDistillLoss(weighting='teacher_score')(s_logit, s_box, t_prob, t_box, wh)
    ref = HungarianDistillLoss(weighting=None)(s_logit, s_box, t_prob, t_box, wh)
    w = torch.tensor([0.9, 0.02])
    assert paper['loss_logits'].item() == pytest.approx(
        ((w * per_pair).sum() / w.sum()).item(), rel=1e-5)
    assert ref['loss_logits'].item() == pytest.approx(per_pair.mean().item(), rel=1e-5)
    assert paper['loss_bbox'].item() == pytest.approx(
        5 * ((w * l1_pair).sum() / w.sum()).item(), rel=1e-5)
    assert ref['loss_bbox'].item() == pytest.approx(5 * l1_pair.mean().item(), rel=1e-5)
    # the background pair dominates the reference's loss but not the weighted one
    assert per_pair[1] > 5 * per_pair[0]
    assert paper['loss_logits'] < 0.5 * ref['loss_logits']
    with pytest.raises(ValueError):
        HungarianDistillLoss(weighting='mean')


def test_target_aware_mask_hand_case_and_loss():
    queries = torch.tensor([[[1.0, 0.0]]])                 # (B=1, N=1, D=2)
    quality = torch.tensor([[0.5]])
    feat = torch.tensor([[[[2.0, 0.0]], [[0.0, 3.0]]]])    # (1, 2, 1, 2): cos 1 and cos 0
    mask = target_aware_mask(queries, quality, feat)
    # [0.5 * 1, clamp(0.5 * 0, 0.01)] / 0.5 = [1, 0.02]
    torch.testing.assert_close(mask, torch.tensor([[[[1.0, 0.02]]]]))
    student = torch.zeros_like(feat)
    expected = ((feat * mask) ** 2).mean()   # (4 + 0 + 0 + (3 * 0.02)^2) / 4
    loss = target_aware_feature_loss(student, feat, mask)
    assert loss.item() == pytest.approx(expected.item())
    assert expected.item() == pytest.approx((4 + 0.0036) / 4)


def test_target_aware_mask_and_fused_stage_loss_match_the_reference_formula():
    # the reference: one similarity map per query, weighted sum, clamp, max-normalise; one
    # masked MSE per stage, summed. Ours: the weighted query sum first, all stages in one pass
    g = torch.Generator().manual_seed(0)
    queries = torch.randn(3, 2, 7, 8, generator=g)           # (stages, B, N, D)
    quality = torch.rand(3, 2, 7, generator=g)
    feat_t = torch.randn(2, 8, 5, 6, generator=g)
    feat_s = torch.randn(2, 8, 5, 6, generator=g, requires_grad=True)

    def ref_mask(q, w):
        sim = torch.einsum('bnc,bchw->bnhw', F.normalize(q, dim=-1), F.normalize(feat_t, dim=1))
        m = torch.einsum('bnhw,bn->bhw', sim, w).clamp(min=0.01)
        return (m / m.flatten(1).max(-1).values[:, None, None])[:, None]

    for q, w in zip(queries, quality):
        torch.testing.assert_close(target_aware_mask(q, w, feat_t), ref_mask(q, w))
    want = sum(F.mse_loss(ref_mask(q, w) * feat_s, ref_mask(q, w) * feat_t)
               for q, w in zip(queries, quality)) * 2.0
    got = TargetAwareFeatureLoss(loss_weight=2.0)(feat_s, feat_t, queries, quality)
    torch.testing.assert_close(got, want)
    one = TargetAwareFeatureLoss(loss_weight=2.0)(feat_s, feat_t, queries[1], quality[1])
    torch.testing.assert_close(one, F.mse_loss(ref_mask(queries[1], quality[1]) * feat_s,
                                               ref_mask(queries[1], quality[1]) * feat_t) * 2)
    g_got, = torch.autograd.grad(got, feat_s)
    g_want, = torch.autograd.grad(want, feat_s)
    torch.testing.assert_close(g_got, g_want)


def _sample(gt_boxes, h=100, w=100):
    ds = DetDataSample(metainfo=dict(img_shape=(h, w)))
    ds.gt_instances = InstanceData(bboxes=torch.tensor(gt_boxes, dtype=torch.float32).view(-1, 4),
                                   labels=torch.zeros(len(gt_boxes), dtype=torch.long))
    return ds


def test_select_target_queries_quality_with_and_without_gt():
    # 2 queries x 2 classes; probabilities 0.9, 0.2 / 0.6, 0.1
    cls = torch.logit(torch.tensor([[0.9, 0.2], [0.6, 0.1]]))[None].repeat(2, 1, 1)
    # query 0 covers (0, 0, 50, 50) px, query 1 (50, 50, 100, 100)
    boxes = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])[None].repeat(2, 1, 1)
    embeds = torch.tensor([[1.0, 0.0], [0.0, 1.0]])[None].repeat(2, 1, 1)
    # image 0: GT = (0, 0, 50, 25): IoU 0.5 with query 0, 0 with query 1; image 1: no GT
    samples = [_sample([[0, 0, 50, 25]]), _sample([])]
    queries, quality = select_target_queries(cls, boxes, embeds, 3, samples)
    # top-3 pairs: (q0, c0) 0.9, (q1, c0) 0.6, (q0, c1) 0.2
    torch.testing.assert_close(quality[0], torch.tensor([0.45, 0.0, 0.1]))
    torch.testing.assert_close(quality[1], torch.tensor([0.9, 0.6, 0.2]))  # score only
    torch.testing.assert_close(queries[1], torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))


def test_select_target_queries_of_all_stages_equals_one_stage_at_a_time():
    # 3 stages, 3 images with 2, 0 and 1 GT boxes (NaN padding of the shorter GT lists)
    g = torch.Generator().manual_seed(11)
    cls = torch.randn(3, 3, 8, 4, generator=g)
    boxes = torch.cat([torch.rand(3, 3, 8, 2, generator=g) * 0.6 + 0.2,
                       torch.rand(3, 3, 8, 2, generator=g) * 0.4 + 0.1], -1)
    embeds = torch.randn(3, 3, 8, 6, generator=g)
    samples = [_sample([[0, 0, 50, 25], [20, 30, 90, 80]]), _sample([]),
               _sample([[10, 40, 60, 100]], 120, 100)]
    queries, quality = select_target_queries(cls, boxes, embeds, 5, samples)
    assert queries.shape == (3, 3, 5, 6) and quality.shape == (3, 3, 5)
    for st in range(3):
        q, w = select_target_queries(cls[st], boxes[st], embeds[st], 5, samples)
        torch.testing.assert_close(queries[st], q)
        torch.testing.assert_close(quality[st], w)
        # by the definition, image by image: score x max IoU with its GT (pixel boxes)
        scores, idx = cls[st].sigmoid().flatten(1).topk(5, dim=1)
        for b, ds in enumerate(samples):
            gt = ds.gt_instances.bboxes
            if len(gt) == 0:
                torch.testing.assert_close(w[b], scores[b])
                continue
            h, wd = ds.metainfo['img_shape']
            px = boxes[st, b, idx[b] // 4]
            px = torch.stack([(px[:, 0] - px[:, 2] / 2) * wd, (px[:, 1] - px[:, 3] / 2) * h,
                              (px[:, 0] + px[:, 2] / 2) * wd, (px[:, 1] + px[:, 3] / 2) * h], -1)
            from mmdet.structures.bbox import bbox_overlaps
            torch.testing.assert_close(w[b], scores[b] * bbox_overlaps(px, gt).amax(-1))


def test_layer_pairs():
    assert layer_pairs(3, 3) == [(0, 0), (1, 1), (2, 2)]
    assert layer_pairs(3, 6) == [(0, 3), (1, 4), (2, 5)]   # last layers aligned
    assert layer_pairs(6, 3) == [(3, 0), (4, 1), (5, 2)]
    assert layer_pairs(6, 3, 'final') == [(5, 2)]
    assert layer_pairs(2, 2, [(0, 1)]) == [(0, 1)]
    with pytest.raises(ValueError):
        layer_pairs(2, 2, [(0, 5)])


# -- components on toy DETRs ---------------------------------------------------------------
SCHEDULE = {'deformable-detr': '50e', 'dino': '24e', 'conditional-detr': '50e'}


def build(variant, components=COMPONENTS, teacher=None):
    student = f'configs/toy/{variant}_r18-w16_{SCHEDULE[variant]}_toy.py'
    teacher = teacher or f'configs/toy/{variant}_r34-w32_{SCHEDULE[variant]}_toy.py'
    with DefaultScope.overwrite_default_scope('mmdet'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(dict(type='densekd.DistillationModel', student=dict(config=student),
                                  teacher=dict(config=teacher), components=components))
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def models(repo_root):
    torch.manual_seed(0)
    return {v: build(v) for v in ('deformable-detr', 'dino', 'conditional-detr')}


@pytest.fixture(scope='module')
def repo_root():
    import os
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cwd = os.getcwd()
    os.chdir(root)
    yield root
    os.chdir(cwd)


def batch(model, num_items=(3, 0), seed=0):
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(seed)
    data = demo_mm_inputs(batch_size=len(num_items), image_shapes=[(3, 128, 128)] * len(num_items),
                          num_items=list(num_items), num_classes=5)
    return model.data_preprocessor(data, True)


@pytest.mark.parametrize('variant', ['deformable-detr', 'dino', 'conditional-detr'])
def test_all_components_loss_and_backward(models, variant):
    model = models[variant]
    model.train()
    model.zero_grad()
    data = batch(model)   # the second image has no GT
    losses = model(**data, mode='loss')
    keys = {f'distill.{c}.{k}' for c, ks in (('logits', ('loss_logits', 'loss_bbox', 'loss_iou')),
                                             ('feature', ('loss_feature',)),
                                             ('query', ('loss_cls', 'loss_bbox', 'loss_iou')))
            for k in ks}
    assert keys <= set(losses)
    for key in keys:
        assert torch.isfinite(losses[key]) and losses[key].item() > 0, key
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    grads = [p.grad for p in model.student.parameters() if p.requires_grad]
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    for name, p in model.components.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if variant == 'deformable-detr':   # 64-d student, 128-d teacher: adapters + projections
        names = {n for n, _ in model.components.named_parameters()}
        assert {'feature.adapters.0.layers.0.weight', 'query.query_proj.weight',
                'query.pos_proj.weight'} <= names


def test_dino_denoising_queries_are_excluded(models):
    model = models['dino']
    model.train()
    captured = {}

    def hook(module, args, kwargs, output):
        captured['out'] = output

    head = model.student.bbox_head
    handle = head.register_forward_hook(hook, with_kwargs=True)
    try:
        torch.manual_seed(1)
        data = batch(model, num_items=(4, 2))
        img_feats = model.student.extract_feat(data['inputs'])
        head_in = model.student.forward_transformer(img_feats, data['data_samples'])
        dn_meta = head_in['dn_meta']
        full_cls, _ = head(head_in['hidden_states'], head_in['references'])
    finally:
        handle.remove()
    num_dn = dn_meta['num_denoising_queries']
    assert num_dn > 0 and full_cls.shape[2] == num_dn + model.student.num_queries
    match_cls, _, _, _ = head.split_outputs(full_cls, full_cls[..., :4], dn_meta)
    reader = model.components['logits'].readers[0]
    levels = [head_in['hidden_states'], torch.stack(head_in['references'])]
    cls, boxes = reader.predictions(levels, 'student')
    assert cls.shape[2] == model.student.num_queries
    torch.testing.assert_close(cls, match_cls)
    torch.testing.assert_close(cls, head_predictions(model.student, levels, {})[0][:, :, num_dn:])
    for r in model.components['logits'].readers:
        r.clear()


def no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        elif isinstance(m, torch.nn.MultiheadAttention):
            m.dropout = 0.0            # attention-weight dropout, applied functionally


@pytest.mark.parametrize('variant', ['deformable-detr', 'dino', 'conditional-detr'])
def test_student_outputs_unchanged_by_distillation(models, variant):
    # the query-prior group rides in the student's decoder call (one pass): the student's
    # own losses must not change. Without dropout, whose random masks are drawn for the
    # merged tensors (the toy Deformable DETR has dropout 0.1; DINO none)
    model = models[variant]
    no_dropout(model)
    data = batch(model, num_items=(2, 1), seed=2)
    model.eval()
    with torch.no_grad():
        before = model.student.predict(data['inputs'], data['data_samples'])
    model.train()
    torch.manual_seed(5)   # same RNG for dropout / denoising queries in both runs
    with_kd = model(**data, mode='loss')
    torch.manual_seed(5)
    alone = model.student.loss(data['inputs'], data['data_samples'])
    for key, value in alone.items():
        torch.testing.assert_close(with_kd[key], value, msg=key)
    model.eval()
    with torch.no_grad():
        after = model.student.predict(data['inputs'], data['data_samples'])
    for a, b in zip(before, after):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)


def test_identical_teacher_and_student_give_zero_logits_loss(repo_root):
    # DINO has no dropout; the student's BN is put in eval so both see the same features.
    # The teacher's boxes are not clipped here: clipped targets differ from the student's
    # own boxes where those cross the border (see the clamp tests below)
    torch.manual_seed(0)
    model = build('dino', [dict(COMPONENTS[0], clamp_teacher_boxes=False)],
                  teacher='configs/toy/dino_r18-w16_24e_toy.py')
    model.teacher.load_state_dict(model.student.state_dict())
    model.train()
    model.student.backbone.eval()
    losses = model(**batch(model), mode='loss')
    for key in ('loss_logits', 'loss_bbox', 'loss_iou'):
        assert losses[f'distill.logits.{key}'].item() == pytest.approx(0.0, abs=1e-4), key


def test_clamp_to_image_is_the_reference_pixel_clip():
    # the reference: pixel corners (x * w, y * h) clamped to [0, w] x [0, h]; as targets
    # they are divided by (w, h) again and turned to cxcywh. Re-derived here on a 200 x 100
    # image for boxes inside, across the right / bottom border and across the top-left corner
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.4],     # inside: unchanged
                          [0.9, 0.5, 0.4, 0.2],     # x2 = 1.1 -> 1.0
                          [0.1, 0.95, 0.4, 0.3],    # x1 = -0.1 -> 0, y2 = 1.1 -> 1.0
                          [0.5, 0.5, 1.5, 1.5]])    # larger than the image -> the image
    w, h = 200.0, 100.0
    cx, cy, bw, bh = boxes.unbind(-1)
    x1 = ((cx - bw / 2) * w).clamp(0, w)
    x2 = ((cx + bw / 2) * w).clamp(0, w)
    y1 = ((cy - bh / 2) * h).clamp(0, h)
    y2 = ((cy + bh / 2) * h).clamp(0, h)
    ref = torch.stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], -1)
    torch.testing.assert_close(clamp_to_image(boxes), ref)
    # by hand
    torch.testing.assert_close(clamp_to_image(boxes), torch.tensor([
        [0.5, 0.5, 0.2, 0.4], [0.85, 0.5, 0.3, 0.2], [0.15, 0.9, 0.3, 0.2],
        [0.5, 0.5, 1.0, 1.0]]))


@pytest.mark.parametrize('clamp', [True, False])
def test_logits_targets_are_the_teachers_boxes_clipped_to_the_image(models, clamp):
    model = models['deformable-detr']
    comp = model.components['logits']
    seen = []
    handle = comp.loss.register_forward_pre_hook(lambda m, args: seen.append(args[3].clone()))
    comp.clamp_teacher_boxes = clamp
    try:
        model.train()
        with torch.no_grad():
            model(**batch(model, num_items=(3, 1), seed=3), mode='loss')
    finally:
        handle.remove()
        comp.clamp_teacher_boxes = True
    from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
    corners = bbox_cxcywh_to_xyxy(torch.cat(seen))
    inside = ((corners >= -1e-6) & (corners <= 1 + 1e-6)).all(-1)
    # the random toy teacher predicts boxes across the border: clipped only with the clamp
    assert bool(inside.all()) == clamp, inside.float().mean()


def test_query_prior_targets_all_background_without_gt(models):
    comp = models['deformable-detr'].components['query']
    q, c = models['deformable-detr'].teacher.num_queries, 5
    t_cls = torch.randn(2, q, c)
    t_box = torch.rand(2, q, 4) * 0.5 + 0.25
    samples = [_sample([[10, 10, 60, 70], [30, 40, 90, 120]], 128, 128), _sample([], 128, 128)]
    labels, targets, weights, num_pos = comp.teacher_targets(t_cls, t_box, samples)
    assert num_pos == 2
    assert (labels[q:] == c).all() and (weights[q:] == 0).all()
    pos = labels[:q] < c
    assert pos.sum() == 2
    # targets are the GT boxes in normalised cxcywh
    expected = {(35 / 128, 40 / 128, 50 / 128, 60 / 128), (60 / 128, 80 / 128, 60 / 128, 80 / 128)}
    got = {tuple(round(v, 5) for v in t.tolist()) for t in targets[:q][pos]}
    assert got == {tuple(round(v, 5) for v in e) for e in expected}


def test_hooks_are_removed(repo_root):
    model = build('conditional-detr', [COMPONENTS[2]])
    comp = model.components['query']
    assert len(model.student.decoder._forward_pre_hooks) == 1
    comp.remove_hooks()
    comp.remove_hooks()
    assert len(model.student.decoder._forward_pre_hooks) == 0
    assert len(model.teacher.decoder._forward_pre_hooks) == 0


def test_query_prior_loss_equals_mmdet_loss_under_the_same_assignment(models):
    # both toy heads use the same Hungarian assigner config, so assigning the student's own
    # predictions with the teacher's assigner is the student head's assignment: the group loss
    # must then equal mmdet's DETRHead.loss_by_feat_single
    model = models['deformable-detr']
    comp, head = model.components['query'], model.student.bbox_head
    g = torch.Generator().manual_seed(4)
    cls = torch.randn(2, 30, 5, generator=g)
    boxes = torch.rand(2, 30, 4, generator=g) * 0.5 + 0.25
    samples = [_sample([[10, 10, 60, 70], [30, 40, 90, 120]], 128, 128),
               _sample([[0, 0, 128, 64]], 128, 128)]
    targets = comp.teacher_targets(cls, boxes, samples)
    ours = comp.layer_loss(cls, boxes, *targets, [s.metainfo for s in samples])
    ref = head.loss_by_feat_single(cls, boxes, [s.gt_instances for s in samples],
                                   [s.metainfo for s in samples])
    for a, b in zip(ours, ref):
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
    # three decoder layers in one call: the sum of the layers' losses
    layers_cls = torch.stack([cls, cls.flip(1), cls * 0.5])
    layers_boxes = torch.stack([boxes, boxes.flip(1), boxes * 0.9])
    together = comp.layer_loss(layers_cls, layers_boxes, *targets,
                               [s.metainfo for s in samples])
    for i, value in enumerate(together):
        expected = sum(comp.layer_loss(c, b, *targets, [s.metainfo for s in samples])[i]
                       for c, b in zip(layers_cls, layers_boxes))
        assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def _normaliser_worker(rank: int, port: int, queue) -> None:
    import torch.distributed as dist

    from densekd.models.losses.detr_distill import _normaliser
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2)
    weights = torch.full((3 if rank == 0 else 5,), 0.5)
    queue.put((rank, _normaliser(torch.ones(len(weights)), None).item(),
               _normaliser(weights, 'teacher_score').item()))
    dist.destroy_process_group()


def test_logits_normaliser_is_averaged_over_processes():
    # 3 and 5 matched pairs on two processes: each divides by the mean, 4 (weighted: 2),
    # so DDP's gradient average gives the global mean over the 8 pairs
    import multiprocessing
    import socket

    from densekd.models.losses.detr_distill import _normaliser
    assert _normaliser(torch.ones(3), None).item() == 3          # not distributed
    assert _normaliser(torch.zeros(2), None).item() == 1         # at least 1
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    ctx = multiprocessing.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_normaliser_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results == [(0, 4.0, 2.0), (1, 4.0, 2.0)]


@pytest.mark.parametrize('variant', ['deformable-detr', 'dino', 'conditional-detr'])
def test_query_group_one_pass_equals_a_separate_decoder_pass(repo_root, variant,
                                                            monkeypatch):
    # same weights, no dropout: the group's losses (and gradients) are the same whether it
    # rides in the student's decoder call or runs as its own forward_decoder call
    torch.manual_seed(0)
    model = build(variant, [COMPONENTS[2]])
    no_dropout(model)
    model.train()
    comp = model.components['query']
    assert 'forward' in model.student.decoder.__dict__       # wrapped
    data = batch(model, num_items=(3, 1), seed=3)
    results = []
    attn_calls = []
    attn = model.student.decoder.layers[0].self_attn
    plain_forward = type(attn).forward

    def counting_forward(module, *args, **kwargs):
        out = plain_forward(module, *args, **kwargs)
        if module is attn:
            attn_calls.append(out.shape[1])
        return out
    monkeypatch.setattr(type(attn), 'forward', counting_forward)
    for mode in ('split', 'block mask', 'separate'):
        comp.split_self_attn = mode == 'split'
        comp.one_pass = mode != 'separate'
        if mode == 'separate':
            comp._unwrap_decoder()
        model.zero_grad()
        torch.manual_seed(7)                     # DINO's denoising queries
        losses = model(**data, mode='loss')
        group = {k: v for k, v in losses.items() if k.startswith('distill.query.')}
        sum(group.values()).backward()
        results.append((group, next(model.student.decoder.layers[0].ffn.parameters())
                        .grad.clone(), comp.query_proj.weight.grad
                        if isinstance(comp.query_proj, torch.nn.Linear) else None))
    two, g_two, p_two = results[-1]
    for one, g_one, p_one in results[:2]:
        assert sorted(one) == sorted(two) and len(one) == 3
        for key in one:
            assert one[key].item() > 0
            torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-5, msg=key)
        torch.testing.assert_close(g_one, g_two, rtol=1e-3, atol=1e-6)
        if p_one is not None:
            torch.testing.assert_close(p_one, p_two, rtol=1e-3, atol=1e-6)
    # split: one self-attention call per group (2 calls of layer 0 per step split, 1 merged
    # with the block mask, 1 + 1 in the separate pass)
    own, group = model.student.num_queries, model.teacher.num_queries
    if variant == 'dino':
        own = attn_calls[0]   # the student's matching + denoising queries
    assert attn_calls[:2] == [own, group]
    assert attn_calls[2] == own + group
    assert attn_calls[3:] == [own, group]
    comp.remove_hooks()
    assert 'forward' not in model.student.decoder.__dict__


def test_query_group_rides_only_in_a_distillation_step(repo_root):
    # a teacher forward that no distillation step consumed (a benchmark's teacher step)
    # leaves the teacher's decoder inputs recorded: the student's own loss afterwards must
    # be the plain one, not carry the group (its losses equal a loss with nothing recorded)
    torch.manual_seed(0)
    model = build('deformable-detr', [COMPONENTS[2]])
    no_dropout(model)
    model.train()
    comp = model.components['query']
    data = batch(model, num_items=(2, 1), seed=4)
    plain = model.student.loss(data['inputs'], data['data_samples'])
    model.run_teacher(data['inputs'], data['data_samples'])
    assert comp.readers[1].recorder.kwargs is not None          # recorded, not consumed
    calls = []
    original = comp.merge_group
    comp.merge_group = lambda *a: calls.append(1) or original(*a)
    after = model.student.loss(data['inputs'], data['data_samples'])
    assert not calls and comp._group_out is None
    for key, value in plain.items():
        torch.testing.assert_close(after[key], value, msg=key)
    # an instance forward already on a self-attention (mmengine's activation checkpointing
    # sets one) is used for both split calls and is back in place after the step
    attn = model.student.decoder.layers[0].self_attn
    seen = []

    def wrapper(**kwargs):
        seen.append(kwargs['query'].shape[1])
        return type(attn).forward(attn, **kwargs)
    attn.forward = wrapper
    losses = model(**data, mode='loss')                         # the distillation step merges
    assert calls == [1] and losses['distill.query.loss_cls'] > 0
    assert not comp._armed and comp.readers[1].recorder.kwargs is None
    assert seen == [model.student.num_queries, model.teacher.num_queries]
    assert attn.__dict__['forward'] is wrapper


@pytest.mark.parametrize('weighting', ['teacher_score', None])
def test_hungarian_loss_over_layers_is_the_sum_of_per_layer_losses(weighting):
    g = torch.Generator().manual_seed(7)
    layers, n, c = 3, 5, 4
    logits = torch.randn(layers, n, c, generator=g, requires_grad=True)
    boxes = torch.cat([torch.rand(layers, n, 2, generator=g) * 0.6 + 0.2,
                       torch.rand(layers, n, 2, generator=g) * 0.3 + 0.05], -1)
    boxes.requires_grad_(True)
    probs = torch.rand(layers, n, c, generator=g)
    t_boxes = torch.cat([torch.rand(layers, n, 2, generator=g) * 0.6 + 0.2,
                         torch.rand(layers, n, 2, generator=g) * 0.3 + 0.05], -1)
    wh = torch.tensor([200.0, 100.0]).expand(layers, n, 2)
    loss = HungarianDistillLoss(weighting=weighting)
    batched = loss(logits, boxes, probs, t_boxes, wh)
    per_layer = [loss(logits[i], boxes[i], probs[i], t_boxes[i], wh[i]) for i in range(layers)]
    for key, value in batched.items():
        expected = sum(out[key] for out in per_layer)
        torch.testing.assert_close(value, expected)
        # loss_logits does not depend on the boxes, the box losses not on the logits
        g1 = torch.autograd.grad(value, (logits, boxes), retain_graph=True, allow_unused=True)
        g2 = torch.autograd.grad(expected, (logits, boxes), retain_graph=True, allow_unused=True)
        assert [a is None for a in g1] == [b is None for b in g2] != [True, True]
        for a, b in zip(g1, g2):
            if a is not None:
                torch.testing.assert_close(a, b)


class _FixedReader:
    """Stands in for a DetrReader: fixed head predictions (L, B, Q, C), (L, B, Q, 4)."""

    def __init__(self, cls, boxes):
        self.cls, self.boxes = cls, boxes

    def predictions(self, levels, owner):
        return self.cls, self.boxes

    def clear(self):
        pass


@pytest.mark.parametrize('qs,qt,layers', [(6, 6, 'last'), (5, 7, 'last'), (7, 4, 'last'),
                                          (6, 6, 'final'), (6, 6, [(0, 2), (-1, -1)])])
def test_logits_component_equals_per_layer_per_image_matching(qs, qt, layers):
    # the batched matching and loss against the per-(layer pair, image) form: one matcher
    # call per image, the loss per layer pair, summed (clipped teacher boxes in both)
    from densekd.models.components.detr_distill_logits import DETRLogitsDistill
    from densekd.models.matchers import HungarianMatcher
    g = torch.Generator().manual_seed(qs * 100 + qt)
    ls_, lt_, b, c = 3, 4, 2, 5
    s_cls = torch.randn(ls_, b, qs, c, generator=g, requires_grad=True)
    s_box = torch.cat([torch.rand(ls_, b, qs, 2, generator=g),
                       torch.rand(ls_, b, qs, 2, generator=g) * 0.4 + 0.05], -1)
    s_box.requires_grad_(True)
    t_cls = torch.randn(lt_, b, qt, c, generator=g)
    t_box = torch.cat([torch.rand(lt_, b, qt, 2, generator=g),
                       torch.rand(lt_, b, qt, 2, generator=g) * 0.4 + 0.05], -1)
    samples = [DetDataSample(metainfo=dict(img_shape=(100, 200))),
               DetDataSample(metainfo=dict(img_shape=(128, 96)))]
    comp = DETRLogitsDistill(layers=layers)
    comp._readers = (_FixedReader(s_cls, s_box), _FixedReader(t_cls, t_box))
    out = comp({'decoder': None}, {'decoder': None}, samples)

    matcher, loss = HungarianMatcher(), HungarianDistillLoss()
    t_prob, t_clip = t_cls.sigmoid(), clamp_to_image(t_box)
    expected = {}
    for sl, tl in layer_pairs(ls_, lt_, layers):
        idx = []
        for i, ds in enumerate(samples):
            si, ti = matcher(s_cls[sl, i].detach(), s_box[sl, i].detach(), t_prob[tl, i],
                             t_clip[tl, i], ds.metainfo['img_shape'])
            idx.append((torch.full_like(si, i), si, ti))
        img, si, ti = (torch.cat(x) for x in zip(*idx))
        h_w = torch.tensor([ds.metainfo['img_shape'] for ds in samples], dtype=torch.float32)
        for key, value in loss(s_cls[sl][img, si], s_box[sl][img, si], t_prob[tl][img, ti],
                               t_clip[tl][img, ti], h_w.flip(-1)[img]).items():
            expected[key] = expected.get(key, 0) + value
    assert out.keys() == expected.keys()
    for key in out:
        torch.testing.assert_close(out[key], expected[key])
        grads = [torch.autograd.grad(v, (s_cls, s_box), retain_graph=True, allow_unused=True)
                 for v in (out[key], expected[key])]
        for a, e in zip(*grads):
            assert (a is None) == (e is None)
            if a is not None:
                torch.testing.assert_close(a, e)
