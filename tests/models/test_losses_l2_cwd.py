"""Exact values of the L2 (FitNet) and CWD losses on small tensors."""
import math

import pytest
import torch
import torch.nn.functional as F

from densekd.models.losses import ChannelWiseDivergence, L2Loss, channel_wise_divergence, l2_loss


def test_l2_hand_computed():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    t = torch.zeros_like(s)
    # sum of squares = 1 + 4 + 9 + 16 = 30
    assert l2_loss(s, t, 'mean').item() == pytest.approx(30 / 4)
    assert l2_loss(s, t, 'batchmean').item() == pytest.approx(30.0)
    assert L2Loss(loss_weight=2.0)(s, t).item() == pytest.approx(15.0)


def test_l2_normalize_closed_form():
    s = torch.tensor([[3.0, 4.0]])  # unit vector (0.6, 0.8)
    t = torch.tensor([[0.0, 2.0]])  # unit vector (0, 1)
    # |(0.6, -0.2)|^2 = 0.4, mean over 2 elements
    assert l2_loss(s, t, 'mean', normalize=True).item() == pytest.approx(0.2)


def test_l2_gradient_only_to_student():
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    l2_loss(s, t).backward()
    assert t.grad is None
    assert torch.allclose(s.grad, 2 * (s - t).detach() / s.numel())


def test_cwd_two_location_closed_form():
    # one channel over two locations: p_T = softmax([ln 3, 0]) = (3/4, 1/4), p_S = (1/2, 1/2)
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 1, 1, 2)
    s = torch.zeros(1, 1, 1, 2)
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert channel_wise_divergence(s, t, tau=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_cwd_temperature_and_channel_mean():
    t1 = torch.tensor([math.log(3.0), 0.0])
    # channel 0 differs, channel 1 is identical (KL 0): the result is halved by /(N*C)
    t = torch.stack([t1, torch.tensor([1.0, 2.0])]).view(1, 2, 1, 2)
    s = torch.stack([torch.zeros(2), torch.tensor([1.0, 2.0])]).view(1, 2, 1, 2)
    tau = 2.0
    a = math.sqrt(3.0)  # softmax([ln 3 / 2, 0]) = (a, 1) / (a + 1)
    p = (a / (a + 1), 1 / (a + 1))
    kl = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    expected = tau ** 2 * kl / 2
    got = ChannelWiseDivergence(tau=tau, loss_weight=3.0)(s, t).item()
    assert got == pytest.approx(3.0 * expected, rel=1e-6)


def test_cwd_parity_with_reference_formula():
    # MMRazor / TorchDistiller formulation, written independently
    torch.manual_seed(0)
    s, t, tau = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 4), 4.0
    n, c, h, w = s.shape
    p_t = F.softmax(t.view(-1, w * h) / tau, dim=1)
    ref = torch.sum(p_t * F.log_softmax(t.view(-1, w * h) / tau, dim=1)
                    - p_t * F.log_softmax(s.view(-1, w * h) / tau, dim=1)) * tau ** 2 / (c * n)
    assert channel_wise_divergence(s, t, tau).item() == pytest.approx(ref.item(), rel=1e-5)


def test_cwd_zero_when_equal_and_empty_is_zero_not_nan():
    x = torch.randn(2, 3, 4, 4)
    assert channel_wise_divergence(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    empty = torch.zeros(0, 3, 4, 4, requires_grad=True)
    out = channel_wise_divergence(empty, torch.zeros(0, 3, 4, 4))
    assert out.item() == 0.0 and out.requires_grad
    assert l2_loss(empty, torch.zeros(0, 3, 4, 4)).item() == 0.0


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match='projector'):
        channel_wise_divergence(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))
