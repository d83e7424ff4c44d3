"""Hungarian matcher and DETRDistill cost terms: exact against brute force and hand values."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from densekd.models.matchers import (
    BoxL1Cost,
    GIoUCost,
    HungarianMatcher,
    SoftClassificationCost,
    batched_linear_assignment,
    linear_assignment,
    soft_bce_cost,
)
from densekd.registry import TASK_UTILS


def brute_force(cost: torch.Tensor) -> float:
    """Minimum total cost over all injective row->column (or column->row) maps."""
    p, t = cost.shape
    if p <= t:
        return min(sum(cost[i, c].item() for i, c in enumerate(cols))
                   for cols in itertools.permutations(range(t), p))
    return brute_force(cost.t())


@pytest.mark.parametrize('shape', [(4, 4), (3, 5), (5, 3), (1, 4)])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_linear_assignment_is_optimal(shape, seed):
    cost = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    rows, cols = linear_assignment(cost)
    n = min(shape)
    assert len(rows) == len(cols) == n
    assert len(set(rows.tolist())) == n and len(set(cols.tolist())) == n
    assert cost[rows, cols].sum().item() == pytest.approx(brute_force(cost), abs=1e-6)


def test_linear_assignment_hand_case():
    # greedy (row 0 -> col 0, cost 1) would force row 1 -> col 1 (cost 10): total 11;
    # the optimum is row 0 -> col 1 (2) and row 1 -> col 0 (3): total 5; col 2 unused
    cost = torch.tensor([[1.0, 2.0, 9.0], [3.0, 10.0, 8.0]])
    rows, cols = linear_assignment(cost)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_linear_assignment_empty_and_invalid():
    rows, cols = linear_assignment(torch.zeros(0, 3))
    assert rows.numel() == 0 and cols.numel() == 0 and rows.dtype == torch.long
    with pytest.raises(ValueError, match='NaN'):
        linear_assignment(torch.tensor([[float('nan'), 1.0]]))


def test_soft_classification_cost_equals_pairwise_bce_sum():
    g = torch.Generator().manual_seed(0)
    logits, probs = torch.randn(3, 4, generator=g), torch.rand(5, 4, generator=g)
    expected = torch.stack([torch.stack([
        F.binary_cross_entropy_with_logits(logits[i], probs[j], reduction='sum')
        for j in range(5)]) for i in range(3)])
    torch.testing.assert_close(soft_bce_cost(logits, probs), expected)
    cost = SoftClassificationCost(weight=2.0)(logits, None, probs, None)
    torch.testing.assert_close(cost, 2 * expected)


def test_box_l1_cost_hand_value():
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    target = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.6, 0.4, 0.3, 0.2]])
    cost = BoxL1Cost(weight=5.0)(None, pred, None, target)
    # |0.1| + |0.1| + |0.1| + 0 = 0.3, times 5
    torch.testing.assert_close(cost, torch.tensor([[0.0, 1.5]]))


def test_giou_cost_in_pixels_hand_value():
    # image h=100, w=200: (0.25, 0.25, 0.5, 0.5) -> (0, 0, 100, 50) px
    pred = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    # (50, 0, 150, 50): IoU 2500 / 7500, hull 7500 = union -> GIoU 1/3
    # (100, 50, 200, 100): IoU 0, hull 20000, union 10000 -> GIoU -1/2
    target = torch.tensor([[0.5, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]])
    cost = GIoUCost(weight=2.0)(None, pred, None, target, img_shape=(100, 200))
    torch.testing.assert_close(cost, torch.tensor([[-2 / 3, 1.0]]))


def test_matcher_recovers_a_permutation_and_handles_rectangular():
    g = torch.Generator().manual_seed(3)
    boxes = torch.cat([torch.rand(6, 2, generator=g) * 0.6 + 0.2,
                       torch.rand(6, 2, generator=g) * 0.2 + 0.1], 1)
    logits = torch.randn(6, 3, generator=g) * 3
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    matcher = TASK_UTILS.build(dict(type='densekd.HungarianMatcher'))
    assert [type(c) for c in matcher.costs] == [SoftClassificationCost, BoxL1Cost, GIoUCost]
    assert [c.weight for c in matcher.costs] == [1.0, 5.0, 2.0]
    # the teacher's predictions are the student's, permuted: pred i <-> target perm^-1(i)
    s_idx, t_idx = matcher(logits[perm], boxes[perm], logits.sigmoid(), boxes, (128, 128))
    assert t_idx.tolist() == perm[s_idx].tolist()
    # 4 student queries, 6 teacher queries: each student query finds its own box
    s_idx, t_idx = matcher(logits[:4], boxes[:4], logits.sigmoid(), boxes, (128, 128))
    assert s_idx.tolist() == [0, 1, 2, 3] and t_idx.tolist() == [0, 1, 2, 3]
    cost = matcher.cost_matrix(logits[:4], boxes[:4], logits.sigmoid(), boxes, (128, 128))
    assert cost[s_idx, t_idx].sum().item() == pytest.approx(brute_force(cost), abs=1e-4)


def test_matcher_custom_costs_from_config():
    matcher = HungarianMatcher(costs=[dict(type='densekd.BoxL1Cost', weight=1.0)])
    pred = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]])
    s_idx, t_idx = matcher(torch.zeros(2, 1), pred, torch.zeros(2, 1), pred.flip(0))
    assert t_idx.tolist() == [1, 0]


def test_soft_bce_cost_matches_the_reference_formulation():
    # DETRDistill's DistillCrossEntropyLossCost: BCE(x, 1) . t + BCE(x, 0) . (1 - t) over
    # classes, via two einsums (written out here independently of our softplus form)
    g = torch.Generator().manual_seed(7)
    logits, probs = torch.randn(30, 5, generator=g) * 4, torch.rand(50, 5, generator=g)
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction='none')
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction='none')
    ref = torch.einsum('nc,mc->nm', pos, probs) + torch.einsum('nc,mc->nm', neg, 1 - probs)
    torch.testing.assert_close(soft_bce_cost(logits, probs), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('p,t', [(5, 7), (7, 5), (6, 6)])
def test_match_batch_equals_one_matching_per_matrix(p, t):
    # 6 matchings (e.g. 3 decoder layers x 2 images), each image its own size: the batched
    # cost matrices and assignments equal the per-image matcher's (random costs: no ties)
    g = torch.Generator().manual_seed(p * 10 + t)
    n, c = 6, 4
    logits = torch.randn(n, p, c, generator=g)
    boxes = torch.cat([torch.rand(n, p, 2, generator=g) * 0.6 + 0.2,
                       torch.rand(n, p, 2, generator=g) * 0.3 + 0.05], -1)
    probs = torch.rand(n, t, c, generator=g)
    t_boxes = torch.cat([torch.rand(n, t, 2, generator=g) * 0.6 + 0.2,
                         torch.rand(n, t, 2, generator=g) * 0.3 + 0.05], -1)
    hw = torch.tensor([[100, 200], [128, 96]] * 3)
    matcher = HungarianMatcher()
    rows, cols = matcher.match_batch(logits, boxes, probs, t_boxes, hw)
    assert rows.shape == cols.shape == (n, min(p, t)) and rows.dtype == torch.long
    cost = matcher.cost_matrix(logits, boxes, probs, t_boxes, hw)
    for i in range(n):
        shape = tuple(hw[i].tolist())
        torch.testing.assert_close(cost[i], matcher.cost_matrix(
            logits[i], boxes[i], probs[i], t_boxes[i], shape))
        r, cl = matcher(logits[i], boxes[i], probs[i], t_boxes[i], shape)
        assert rows[i].tolist() == r.tolist() and cols[i].tolist() == cl.tolist()


def test_batched_linear_assignment_empty_and_invalid():
    rows, cols = batched_linear_assignment(torch.zeros(3, 0, 4))
    assert rows.shape == cols.shape == (3, 0)
    with pytest.raises(ValueError, match='NaN'):
        batched_linear_assignment(torch.tensor([[[1.0, 2.0]], [[float('inf'), 0.0]]]))
    with pytest.raises(ValueError, match=r'\(N, P, T\)'):
        batched_linear_assignment(torch.zeros(3, 4))
