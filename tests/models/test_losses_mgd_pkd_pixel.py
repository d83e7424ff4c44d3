"""Exact values of the MGD, PKD and pixel-wise KD losses on small tensors."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import densekd  # noqa: F401  (fills the registry)
from densekd.models.components import FeatureMimic
from densekd.models.losses import (
    MGDLoss,
    PixelWiseKD,
    PKDLoss,
    mgd_loss,
    pixel_wise_kd,
    pkd_loss,
    random_spatial_mask,
)
from densekd.registry import MODELS

# --------------------------------------------------------------------------------------- MGD


def test_mgd_hand_computed_with_identity_generator():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    t = torch.zeros_like(s)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # masked student (1, 0, 0, 4): sum of squares 1 + 16 = 17, N = 1
    assert mgd_loss(s, t, nn.Identity(), mask).item() == pytest.approx(17.0)
    # two images: the sum over both is divided by N = 2
    s2, t2 = torch.cat([s, 2 * s]), torch.zeros(2, 1, 2, 2)
    mask2 = torch.cat([mask, mask])
    assert mgd_loss(s2, t2, nn.Identity(), mask2).item() == pytest.approx((17 + 68) / 2)


def test_mgd_parity_with_reference_formula_fixed_mask():
    torch.manual_seed(0)
    loss = MGDLoss(channels=4, loss_weight=2e-5, mask_ratio=0.65)
    s, t = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    # official get_dis_loss, written independently: where(rand > 1 - lambda, 0, 1)
    u = torch.rand(2, 1, 5, 6)
    mat = torch.where(u > 1 - 0.65, 0, 1)
    ref = nn.MSELoss(reduction='sum')(loss.generation(torch.mul(s, mat)), t) / 2 * 2e-5
    mask = (u <= 1 - 0.65).float()
    got = 2e-5 * mgd_loss(s, t, loss.generation, mask)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


def test_mgd_module_draws_the_reference_mask_from_the_global_rng():
    torch.manual_seed(1)
    loss = MGDLoss(channels=3, loss_weight=0.5, mask_ratio=0.4)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.manual_seed(123)
    got = loss(s, t)
    torch.manual_seed(123)
    mat = torch.where(torch.rand(2, 1, 4, 4) > 1 - 0.4, 0, 1)
    ref = ((loss.generation(s * mat) - t) ** 2).sum() / 2 * 0.5
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)


def test_random_spatial_mask_ratio_statistics():
    g = torch.Generator().manual_seed(0)
    m = random_spatial_mask(2, 3, 5, 0.0, generator=g)
    assert m.shape == (2, 1, 3, 5) and torch.equal(m, torch.ones_like(m))
    m = random_spatial_mask(2, 3, 5, 1.0, generator=g)
    assert torch.equal(m, torch.zeros_like(m))
    m = random_spatial_mask(1, 200, 200, 0.65, generator=g, dtype=torch.float64)
    assert m.dtype == torch.float64 and set(m.unique().tolist()) <= {0.0, 1.0}
    # fraction masked ~ 0.65; binomial std over 40000 draws is 0.0024, the bound is 4 std
    assert (1 - m.mean().item()) == pytest.approx(0.65, abs=0.01)
    with pytest.raises(ValueError):
        random_spatial_mask(1, 2, 2, 1.5)


def test_mgd_batch_of_one_and_gradients():
    torch.manual_seed(0)
    loss = MGDLoss(channels=4, loss_weight=1.0, mask_ratio=0.5)
    s = torch.randn(1, 4, 6, 6, requires_grad=True)
    t = torch.randn(1, 4, 6, 6, requires_grad=True)
    out = loss(s, t)
    assert out.dim() == 0 and torch.isfinite(out)
    out.backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0
    for p in loss.generation.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_mgd_empty_batch_is_zero_not_nan():
    loss = MGDLoss(channels=4)
    s = torch.zeros(0, 4, 5, 5, requires_grad=True)
    out = loss(s, torch.zeros(0, 4, 5, 5))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()  # reaches the generator, so DDP sees its parameters used
    assert all(p.grad is not None for p in loss.generation.parameters())


def test_mgd_rejects_wrong_channels():
    with pytest.raises(ValueError, match='project'):
        MGDLoss(channels=4)(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, 4))


# --------------------------------------------------------------------------------------- PKD


def _pearson_closed_form(s, t):
    """mean_c (1 - r_c) (M - 1) / M, r_c the Pearson correlation of channel c over N*H*W."""
    c = s.shape[1]
    xs, xt = s.transpose(0, 1).reshape(c, -1), t.transpose(0, 1).reshape(c, -1)
    m = xs.shape[1]
    xs, xt = xs - xs.mean(1, keepdim=True), xt - xt.mean(1, keepdim=True)
    r = (xs * xt).sum(1) / (xs.norm(dim=1) * xt.norm(dim=1))
    return ((1 - r) * (m - 1) / m).mean()


def test_pkd_closed_form_pearson():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5, dtype=torch.float64), torch.randn(2, 3, 4, 5,
                                                                      dtype=torch.float64)
    t = t + 0.7 * s  # correlated, so r_c is far from 0
    expected = _pearson_closed_form(s, t).item()
    assert pkd_loss(s, t).item() == pytest.approx(expected, rel=1e-5)
    assert PKDLoss(loss_weight=6.0)(s, t).item() == pytest.approx(6 * expected, rel=1e-5)


def test_pkd_anticorrelated_channel_gives_two():
    # one channel, M = 4 values, t = -s: r = -1, loss = 2 * (M - 1) / M = 1.5
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    assert pkd_loss(s, -s).item() == pytest.approx(1.5, rel=1e-5)


def test_pkd_invariant_to_per_channel_affine_student():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    scale = torch.tensor([0.5, 2.0, 3.0]).view(1, 3, 1, 1)
    shift = torch.tensor([-1.0, 4.0, 0.3]).view(1, 3, 1, 1)
    assert pkd_loss(scale * s + shift, t).item() == pytest.approx(pkd_loss(s, t).item(),
                                                                    rel=1e-5)


def test_pkd_identical_is_zero_and_batch_of_one():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 4)
    assert pkd_loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-10)
    y = torch.randn(1, 3, 4, 4)
    assert pkd_loss(x, y).item() == pytest.approx(_pearson_closed_form(x, y).item(), rel=1e-4)


def test_pkd_size_mismatch_resizes():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 3, 8, 8)
    up = F.interpolate(s, size=(8, 8), mode='bilinear', align_corners=False)
    assert pkd_loss(s, t).item() == pytest.approx(_pearson_closed_form(up, t).item(), rel=1e-4)
    down = F.interpolate(t, size=(4, 4), mode='bilinear', align_corners=False)
    got = PKDLoss(resize_stu=False)(s, t)
    assert got.item() == pytest.approx(_pearson_closed_form(s, down).item(), rel=1e-4)
    got.backward()
    assert s.grad is not None


def test_pkd_empty_is_zero_and_gradient_only_to_student():
    empty = torch.zeros(0, 3, 4, 4, requires_grad=True)
    out = pkd_loss(empty, torch.zeros(0, 3, 4, 4))
    assert out.item() == 0.0 and out.requires_grad
    # a single value per channel has no correlation: zero, not NaN
    assert pkd_loss(torch.ones(1, 3, 1, 1), torch.ones(1, 3, 1, 1)).item() == 0.0
    s = torch.randn(2, 3, 4, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, requires_grad=True)
    pkd_loss(s, t).backward()
    assert t.grad is None and s.grad.abs().sum() > 0


# -------------------------------------------------------------------------------- pixel-wise KD


def test_pixel_kd_two_class_one_pixel():
    # p_T = softmax([ln 3, 0]) = (3/4, 1/4), p_S = (1/2, 1/2)
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1)
    s = torch.zeros(1, 2, 1, 1)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert pixel_wise_kd(s, t).item() == pytest.approx(kl, rel=1e-6)
    # a second pixel where they agree halves the mean over pixels
    t2, s2 = torch.cat([t, s], dim=3), torch.cat([s, s], dim=3)  # (1, 2, 1, 2)
    assert pixel_wise_kd(s2, t2).item() == pytest.approx(kl / 2, rel=1e-6)


def test_pixel_kd_temperature():
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1)
    s = torch.zeros(1, 2, 1, 1)
    tau = 2.0
    a = math.sqrt(3.0)  # softmax([ln 3 / 2, 0]) = (a, 1) / (a + 1)
    p = (a / (a + 1), 1 / (a + 1))
    kl = p[0] * math.log(p[0] / 0.5) + p[1] * math.log(p[1] / 0.5)
    got = PixelWiseKD(tau=tau, loss_weight=3.0)(s, t).item()
    assert got == pytest.approx(3.0 * tau ** 2 * kl, rel=1e-6)


@pytest.mark.filterwarnings('ignore:reduction:UserWarning')
def test_pixel_kd_parity_with_cirkd_and_mmrazor_relation():
    torch.manual_seed(0)
    s, t, tau = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 3, 4), 4.0
    n, c, h, w = s.shape
    # CIRKD CriterionKD, written independently: pixels as rows, batchmean over N*h*w
    rows_s = s.permute(0, 2, 3, 1).reshape(-1, c)
    rows_t = t.permute(0, 2, 3, 1).reshape(-1, c)
    cirkd = F.kl_div(F.log_softmax(rows_s / tau, dim=1), F.softmax(rows_t / tau, dim=1),
                     reduction='batchmean') * tau ** 2
    ours = pixel_wise_kd(s, t, tau)
    assert ours.item() == pytest.approx(cirkd.item(), rel=1e-5)
    # MMRazor KLDivergence on (N, C, H, W): batchmean divides by N only -> H*W times ours;
    # 'mean' divides by N*C*H*W -> C times smaller than ours
    log_p_s, p_t = F.log_softmax(s / tau, dim=1), F.softmax(t / tau, dim=1)
    razor_bm = tau ** 2 * F.kl_div(log_p_s, p_t, reduction='batchmean')
    razor_mean = tau ** 2 * F.kl_div(log_p_s, p_t, reduction='mean')
    assert razor_bm.item() == pytest.approx(h * w * ours.item(), rel=1e-5)
    assert razor_mean.item() == pytest.approx(ours.item() / c, rel=1e-5)


def test_pixel_kd_different_sizes_resize_student():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3, 3, requires_grad=True), torch.randn(2, 4, 6, 6)
    up = F.interpolate(s, size=(6, 6), mode='bilinear', align_corners=False)
    assert pixel_wise_kd(s, t).item() == pytest.approx(pixel_wise_kd(up, t).item(), rel=1e-6)
    # constant maps stay constant under bilinear resizing: the one-pixel value
    t1 = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    s1 = torch.zeros(1, 2, 2, 2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert pixel_wise_kd(s1, t1).item() == pytest.approx(kl, rel=1e-6)
    pixel_wise_kd(s, t).backward()
    assert s.grad is not None and s.grad.shape == s.shape


def test_pixel_kd_empty_is_zero_and_gradient_only_to_student():
    empty = torch.zeros(0, 4, 3, 3, requires_grad=True)
    out = pixel_wise_kd(empty, torch.zeros(0, 4, 3, 3))
    assert out.item() == 0.0 and out.requires_grad
    s = torch.randn(1, 4, 3, 3, requires_grad=True)
    t = torch.randn(1, 4, 3, 3, requires_grad=True)
    pixel_wise_kd(s, t).backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='classes'):
        pixel_wise_kd(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 2, 2))


# ------------------------------------------------------------------------- registry and wiring


@pytest.mark.parametrize('cfg, cls, name', [
    (dict(type='densekd.MGDLoss', channels=8), MGDLoss, 'mgd'),
    (dict(type='densekd.PKDLoss', loss_weight=6.0), PKDLoss, 'pkd'),
    (dict(type='densekd.PixelWiseKD', tau=4.0), PixelWiseKD, 'pixel_kd'),
])
def test_losses_build_from_registry(cfg, cls, name):
    loss = MODELS.build(cfg)
    assert type(loss) is cls and loss.loss_name == name


def test_feature_mimic_builds_one_mgd_per_level():
    torch.manual_seed(0)
    shapes = [torch.Size([2, 8, 8, 8]), torch.Size([2, 8, 4, 4])]
    fm = FeatureMimic(student='neck', teacher='neck',
                      loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.65))
    fm.setup({'neck': shapes}, {'neck': list(shapes)})
    assert len(fm.losses) == 2
    assert all(isinstance(m, MGDLoss) and m.channels == 8 for m in fm.losses)
    assert fm.losses[0].generation is not fm.losses[1].generation
    s = [torch.randn(*sh, requires_grad=True) for sh in shapes]
    t = [torch.randn(*sh) for sh in shapes]
    out = fm({'neck': s}, {'neck': t})
    assert set(out) == {'loss_mgd'}
    assert out['loss_mgd'].dim() == 0 and torch.isfinite(out['loss_mgd'])
    out['loss_mgd'].backward()
    assert all(x.grad is not None for x in s)
