"""SeparableRoIAlign: same values and gradients as mmcv's and torchvision's RoIAlign."""
import pytest
import torch
from mmcv.ops import roi_align as mmcv_roi_align
from torchvision.ops import roi_align as tv_roi_align

from densekd.models.ops import SeparableRoIAlign, roi_align_weights


def random_rois(n_rois, images, size, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n_rois, 2, generator=g) * size * 1.2 - size * 0.2  # some past the edges
    wh = torch.rand(n_rois, 2, generator=g) * size * 0.6
    wh[0] = 0.0  # a degenerate box
    idx = torch.tensor(images, dtype=torch.float32)[
        torch.randint(len(images), (n_rois,), generator=g)]
    return torch.cat([idx[:, None], xy, xy + wh], 1)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [1, 2, 3])
def test_values_and_gradients_equal_the_kernels(aligned, sampling_ratio):
    torch.manual_seed(0)
    feat = torch.randn(3, 5, 13, 9, dtype=torch.float64, requires_grad=True)
    rois = random_rois(11, [0, 2], 100, seed=sampling_ratio).double()  # image 1 has none
    layer = SeparableRoIAlign(7, 1 / 8, sampling_ratio, aligned=aligned)
    assert layer.uses_products(feat)
    got = layer(feat, rois)
    want = tv_roi_align(feat, rois, 7, 1 / 8, sampling_ratio, aligned)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(want)
    g_got, = torch.autograd.grad(got, feat, upstream)
    g_want, = torch.autograd.grad(want, feat, upstream)
    torch.testing.assert_close(g_got, g_want, rtol=1e-10, atol=1e-10)
    assert g_got[1].abs().max() == 0
    # mmcv's kernel (float32 only on CPU), as mmdet's RoI extractors use it
    f32, r32 = feat.detach().float(), rois.float()
    torch.testing.assert_close(layer(f32, r32),
                               mmcv_roi_align(f32, r32, (7, 7), 1 / 8, sampling_ratio, 'avg',
                                              aligned), rtol=1e-5, atol=1e-5)


def test_one_sample_by_hand():
    # a 1x1 output with one sample: bilinear interpolation at the RoI centre. Box
    # (4, 4)-(12, 12) at scale 1/4 is (1, 1)-(3, 3) in cells, (0.5, 0.5)-(2.5, 2.5) after the
    # aligned half-cell shift: centre (1.5, 1.5), halfway between cells 1 and 2 on each axis
    feat = torch.arange(16.0).reshape(1, 1, 4, 4)  # value = 4 * y + x
    rois = torch.tensor([[0.0, 4.0, 4.0, 12.0, 12.0]])
    out = SeparableRoIAlign(1, 0.25, 1, aligned=True)(feat, rois)
    assert out.item() == pytest.approx(4 * 1.5 + 1.5)  # linear map: value at the centre
    wy, wx = roi_align_weights(rois, 1, 0.25, 1, True, 4, 4)
    assert wy[0, 0].tolist() == [0.0, 0.5, 0.5, 0.0] and wx[0, 0].tolist() == [0.0, 0.5, 0.5, 0.0]


def test_large_maps_and_max_pool_go_to_mmcv(monkeypatch):
    layer = SeparableRoIAlign(7, 1 / 8, 2, max_area=100)
    assert layer.uses_products(torch.zeros(1, 1, 10, 10))
    assert not layer.uses_products(torch.zeros(1, 1, 10, 11))
    calls = []
    monkeypatch.setattr(layer.kernel, 'forward', lambda f, r: calls.append(f.shape) or
                        mmcv_roi_align(f, r, (7, 7), 1 / 8, 2, 'avg', True))
    rois = torch.tensor([[0.0, 8.0, 8.0, 40.0, 60.0]])
    small, large = torch.randn(1, 2, 10, 10), torch.randn(1, 2, 10, 11)
    torch.testing.assert_close(layer(small, rois),
                               mmcv_roi_align(small, rois, (7, 7), 1 / 8, 2, 'avg', True))
    assert not calls                                  # the products, same values
    layer(large, rois)
    assert calls == [large.shape]                     # mmcv's kernel
    # no gradient into the boxes, as the kernels
    boxes = rois.clone().requires_grad_()
    small.requires_grad_()
    layer(small, boxes).sum().backward()
    assert boxes.grad is None and small.grad.abs().sum() > 0
    assert not SeparableRoIAlign(7, 1 / 8, 0).uses_products(torch.zeros(1, 1, 4, 4))
    assert not SeparableRoIAlign(7, 1 / 8, 2, pool_mode='max').uses_products(
        torch.zeros(1, 1, 4, 4))
    assert layer.output_size == (7, 7)


def test_no_rois_is_an_empty_connected_result():
    feat = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = SeparableRoIAlign(4, 1.0, 2)(feat, feat.new_zeros(0, 5))
    assert out.shape == (0, 3, 4, 4)
    out.sum().backward()
    assert feat.grad.abs().max() == 0


@pytest.mark.parametrize('aligned', [True, False])
def test_levels_at_once_equal_each_level_on_its_own(aligned):
    # per-RoI scales and map sizes give each RoI's own level weights (bitwise, zero past its
    # map), and the grouped two-pyramid pooling equals the single-map layer level by level,
    # values and the first pyramid's gradients; a level without RoIs keeps a zero gradient
    from densekd.models.ops import separable_roi_align_levels
    g = torch.Generator().manual_seed(3)
    scales, shapes = [1 / 8, 1 / 16, 1 / 32], [(20, 24), (10, 12), (5, 6)]
    feats = [torch.randn(2, 4, h, w, generator=g, dtype=torch.float64, requires_grad=True)
             for h, w in shapes]
    others = [torch.randn(2, 3, h, w, generator=g, dtype=torch.float64) for h, w in shapes]
    rois = random_rois(9, [0, 1], 180, seed=4).double()
    levels = torch.tensor([0, 2, 0, 0, 2, 2, 0, 2, 0])  # level 1 has none
    for lvl in (0, 2):
        sel = levels == lvl
        sizes = torch.tensor(shapes)[levels]
        wy, wx = roi_align_weights(rois, 7, torch.tensor(scales)[levels], 2, aligned,
                                   sizes[:, 0], sizes[:, 1], (20, 24))
        ref_y, ref_x = roi_align_weights(rois[sel], 7, scales[lvl], 2, aligned, *shapes[lvl])
        assert torch.equal(wy[sel, :, :shapes[lvl][0]], ref_y)
        assert torch.equal(wx[sel, :, :shapes[lvl][1]], ref_x)
        assert wy[sel, :, shapes[lvl][0]:].abs().sum() == 0
    s_out, t_out = separable_roi_align_levels(feats, others, rois, levels, scales, 7, 2,
                                              aligned)
    assert not t_out.requires_grad
    upstream = torch.randn_like(s_out)
    grads = torch.autograd.grad(s_out, feats, upstream)
    for lvl in (0, 2):
        sel = levels == lvl
        layer = SeparableRoIAlign(7, scales[lvl], 2, aligned=aligned)
        want = layer(feats[lvl], rois[sel])
        torch.testing.assert_close(s_out[sel], want, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(t_out[sel], layer(others[lvl], rois[sel]), rtol=1e-12,
                                   atol=1e-12)
        g_want, = torch.autograd.grad(want, feats[lvl], upstream[sel])
        torch.testing.assert_close(grads[lvl], g_want, rtol=1e-12, atol=1e-12)
    assert grads[1].abs().sum() == 0
    s_none, t_none = separable_roi_align_levels(feats, others, rois[:0], levels[:0], scales,
                                                7, 2, aligned)
    assert s_none.shape == (0, 4, 7, 7) and t_none.shape == (0, 3, 7, 7)
    assert all(g.abs().sum() == 0 for g in torch.autograd.grad(s_none.sum(), feats))
