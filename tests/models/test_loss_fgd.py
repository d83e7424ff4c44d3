"""FGD: masks and attention by hand, the full loss against a loop re-implementation of the
official ``FeatureLoss`` (yzd-v/FGD), edge cases, gradients and the FeatureMimic wiring."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.structures import InstanceData

import densekd  # noqa: F401  (registers densekd.FGDLoss)
from densekd.models.components import FeatureMimic
from densekd.models.losses import FGDLoss, GcBlock, fgd_attention, fgd_masks, fgd_masks_levels
from densekd.registry import MODELS

ONES = dict(alpha_fgd=1.0, beta_fgd=1.0, gamma_fgd=1.0, lambda_fgd=1.0)


def sample(boxes, img_shape, batch_input_shape):
    ds = DetDataSample()
    ds.gt_instances = InstanceData(bboxes=torch.as_tensor(boxes, dtype=torch.float32).view(-1, 4))
    ds.set_metainfo(dict(img_shape=img_shape, batch_input_shape=batch_input_shape))
    return ds


def randomize(loss):
    """Non-zero last convs, so the channel-add branch of both GcBlocks contributes."""
    torch.manual_seed(123)
    for gc in (loss.gc_S, loss.gc_T):
        torch.nn.init.normal_(gc.channel_add_conv[-1].weight, std=0.5)
        torch.nn.init.normal_(gc.channel_add_conv[-1].bias, std=0.5)
    return loss


# ---- an independent re-implementation of the official FeatureLoss, box by box -------------
def ref_masks(gt_bboxes, shapes, H, W):
    mask_fg, mask_bg = torch.zeros(len(gt_bboxes), H, W), torch.ones(len(gt_bboxes), H, W)
    for i, (boxes, (sh, sw)) in enumerate(zip(gt_bboxes, shapes)):
        for x1, y1, x2, y2 in boxes.tolist():
            wmin, wmax = math.floor(x1 / sw * W), math.ceil(x2 / sw * W)
            hmin, hmax = math.floor(y1 / sh * H), math.ceil(y2 / sh * H)
            area = 1.0 / (hmax + 1 - hmin) / (wmax + 1 - wmin)
            cells = mask_fg[i][hmin:hmax + 1, wmin:wmax + 1]
            mask_fg[i][hmin:hmax + 1, wmin:wmax + 1] = torch.maximum(cells, torch.tensor(area))
        mask_bg[i] = torch.where(mask_fg[i] > 0, 0.0, 1.0)
        if mask_bg[i].sum():
            mask_bg[i] /= mask_bg[i].sum()
    return mask_fg, mask_bg


def ref_attention(x, temp):
    N, C, H, W = x.shape
    spatial = torch.empty(N, H, W)
    channel = torch.empty(N, C)
    for n in range(N):
        fea = torch.stack([x[n, :, h, w].abs().mean() for h in range(H) for w in range(W)])
        spatial[n] = (H * W * F.softmax(fea / temp, dim=0)).view(H, W)
        chan = torch.stack([x[n, c].abs().mean() for c in range(C)])
        channel[n] = C * F.softmax(chan / temp, dim=0)
    return spatial, channel


def ref_gc(x, gc):
    """GcBlock from the module's own weights, with the official matmul pooling."""
    N, C, H, W = x.shape
    mask = F.conv2d(x, gc.conv_mask.weight, gc.conv_mask.bias).view(N, 1, H * W)
    mask = F.softmax(mask, dim=2).unsqueeze(-1)  # N, 1, HW, 1
    context = torch.matmul(x.view(N, C, H * W).unsqueeze(1), mask).view(N, C, 1, 1)
    conv1, ln, _, conv2 = gc.channel_add_conv
    y = F.conv2d(context, conv1.weight, conv1.bias)
    y = F.relu(F.layer_norm(y, [C // 2, 1, 1], ln.weight, ln.bias, ln.eps))
    return x + F.conv2d(y, conv2.weight, conv2.bias)


def ref_fgd(S, T, gt_bboxes, shapes, loss):
    N, C, H, W = S.shape
    mse = torch.nn.MSELoss(reduction='sum')
    s_att_t, c_att_t = ref_attention(T, loss.temp)
    s_att_s, c_att_s = ref_attention(S, loss.temp)
    mask_fg, mask_bg = ref_masks(gt_bboxes, shapes, H, W)
    w_t = torch.sqrt(s_att_t.unsqueeze(1)) * torch.sqrt(c_att_t[:, :, None, None])
    fg = mse(S * w_t * mask_fg.unsqueeze(1).sqrt(), T * w_t * mask_fg.unsqueeze(1).sqrt()) / N
    bg = mse(S * w_t * mask_bg.unsqueeze(1).sqrt(), T * w_t * mask_bg.unsqueeze(1).sqrt()) / N
    at = (c_att_s - c_att_t).abs().sum() / N + (s_att_s - s_att_t).abs().sum() / N
    rela = mse(ref_gc(S, loss.gc_S), ref_gc(T, loss.gc_T)) / N
    return dict(fg=fg, bg=bg, at=at, rela=rela,
                total=loss.alpha_fgd * fg + loss.beta_fgd * bg + loss.gamma_fgd * at
                + loss.lambda_fgd * rela)


# ---- masks ----------------------------------------------------------------------------------
def test_one_box_mask_by_hand():
    # 16x16 px onto a 4x4 grid: box (4, 4, 8, 12) -> x 1..2, y 1..3 (inclusive ends, as the
    # official slices [hmin:hmax+1, wmin:wmax+1]) -> 3 rows x 2 cols = 6 cells of 1/6
    fg, bg = fgd_masks([torch.tensor([[4.0, 4.0, 8.0, 12.0]])], [(16, 16)], (4, 4))
    expected = torch.zeros(4, 4)
    expected[1:4, 1:3] = 1 / 6
    assert torch.allclose(fg[0], expected)
    assert torch.allclose(bg[0], (expected == 0).float() / 10)  # 10 background cells
    assert bg.sum().item() == pytest.approx(1.0)


def test_overlapping_boxes_take_the_max_and_edge_boxes_keep_unclipped_area():
    boxes = torch.tensor([[0.0, 0.0, 8.0, 8.0],     # rows 0..2, cols 0..2: 1/9
                          [4.0, 4.0, 4.0, 4.0],     # a point at (1, 1): one cell, 1
                          [10.0, 14.0, 16.0, 16.0]])  # cols 2..4, rows 3..4: 1/6, col/row 4 clipped
    fg, bg = fgd_masks([boxes], [(16, 16)], (4, 4))
    expected = torch.zeros(4, 4)
    expected[0:3, 0:3] = 1 / 9
    expected[1, 1] = 1.0
    expected[3, 2:4] = 1 / 6
    assert torch.allclose(fg[0], expected)
    assert torch.allclose(bg[0], (expected == 0).float() / 5)


def test_tiny_box_still_covers_a_cell():
    # a 1-pixel box at stride 32 (128 px -> 4 cells): grid 0.31..0.34 -> floor 0, ceil 1
    fg, _ = fgd_masks([torch.tensor([[10.0, 10.0, 11.0, 11.0]])], [(128, 128)], (4, 4))
    expected = torch.zeros(4, 4)
    expected[0:2, 0:2] = 1 / 4
    assert torch.allclose(fg[0], expected)


def test_no_boxes_gives_uniform_background_and_finite_loss():
    fg, bg = fgd_masks([torch.zeros(0, 4)], [(16, 16)], (4, 4))
    assert fg.abs().sum() == 0 and torch.allclose(bg, torch.full((1, 4, 4), 1 / 16))
    torch.manual_seed(0)
    S, T = torch.randn(1, 4, 4, 4, requires_grad=True), torch.randn(1, 4, 4, 4)
    loss = FGDLoss(channels=4, alpha_fgd=1.0, beta_fgd=0.0, gamma_fgd=0.0, lambda_fgd=0.0)
    fg_only = loss(S, T, [sample([], (16, 16), (16, 16))])
    assert fg_only.item() == 0.0 and fg_only.requires_grad  # no foreground at all
    total = FGDLoss(channels=4)(S, T, [sample([], (16, 16), (16, 16))])
    assert torch.isfinite(total) and total.item() > 0


# ---- attention ------------------------------------------------------------------------------
def test_attention_closed_forms():
    sp, ch = fgd_attention(torch.full((2, 3, 4, 5), -0.7), temp=0.5)  # uniform |F|
    assert torch.allclose(sp, torch.ones(2, 4, 5)) and torch.allclose(ch, torch.ones(2, 3))
    # channel means |F| = (0, T ln 3): A_ch = 2 * softmax(0, ln 3) = (0.5, 1.5);
    # each location has mean_c |F| = T ln 3 / 2, uniform -> A_sp = 1
    temp = 0.5
    x = torch.stack([torch.zeros(3, 3), torch.full((3, 3), -temp * math.log(3))])[None]
    sp, ch = fgd_attention(x, temp)
    assert torch.allclose(ch, torch.tensor([[0.5, 1.5]]))
    assert torch.allclose(sp, torch.ones(1, 3, 3))


# ---- the full loss against the official formula ---------------------------------------------
def random_batch(seed, img_shapes, batch_input_shape, n_boxes=(3, 2)):
    g = torch.Generator().manual_seed(seed)
    samples, gt = [], []
    for (h, w), k in zip(img_shapes, n_boxes):
        xy = torch.rand(k, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = torch.rand(k, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3]) + 1
        boxes = torch.cat([xy, xy + wh], dim=1)
        gt.append(boxes)
        samples.append(sample(boxes, (h, w), batch_input_shape))
    return samples, gt


@pytest.mark.parametrize('box_scale', ['batch_input_shape', 'img_shape'])
def test_parity_with_the_official_formula(box_scale):
    torch.manual_seed(0)
    S, T = torch.randn(2, 6, 5, 7), torch.randn(2, 6, 5, 7)
    img_shapes, pad = [(33, 50), (40, 41)], (40, 56)
    samples, gt = random_batch(1, img_shapes, pad)
    shapes = [pad, pad] if box_scale == 'batch_input_shape' else img_shapes
    for weights in (ONES, {}):  # every term counted once, then the published defaults
        loss = randomize(FGDLoss(channels=6, box_scale=box_scale, **weights))
        ref = ref_fgd(S, T, gt, shapes, loss)
        assert ref['fg'] > 0 and ref['bg'] > 0 and ref['at'] > 0 and ref['rela'] > 0
        assert loss(S, T, samples).item() == pytest.approx(ref['total'].item(), rel=1e-5)
    # each term alone
    for term, key in [('alpha_fgd', 'fg'), ('beta_fgd', 'bg'), ('gamma_fgd', 'at'),
                      ('lambda_fgd', 'rela')]:
        only = {k: float(k == term) for k in ONES}
        loss = randomize(FGDLoss(channels=6, box_scale=box_scale, **only))
        assert loss(S, T, samples).item() == pytest.approx(ref[key].item(), rel=1e-5), key


def test_box_scale_matters_only_with_padding():
    torch.manual_seed(0)
    S, T = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    boxes = [[8.0, 8.0, 20.0, 24.0]]
    a, b = FGDLoss(channels=4), FGDLoss(channels=4, box_scale='img_shape')
    b.load_state_dict(a.state_dict())
    padded = [sample(boxes, (32, 40), (64, 64))]
    assert a(S, T, padded).item() != pytest.approx(b(S, T, padded).item(), rel=1e-4)
    # batch_input_shape (/64*8): x 1..2.5 -> cols 1..3, y 1..3 -> rows 1..3;
    # img_shape (x /40*8, y /32*8): x 1.6..4 -> cols 1..4, y 2..6 -> rows 2..6 (stretched)
    fg_pad = a.masks(padded, (8, 8), S.device)[0]
    fg_img = b.masks(padded, (8, 8), S.device)[0]
    assert fg_pad[0].nonzero().tolist() == [[r, c] for r in range(1, 4) for c in range(1, 4)]
    assert fg_img[0].nonzero().tolist() == [[r, c] for r in range(2, 7) for c in range(1, 5)]
    unpadded = [sample(boxes, (64, 64), (64, 64))]
    assert a(S, T, unpadded).item() == b(S, T, unpadded).item()


def test_batch_of_one_and_mmdet_box_type():
    torch.manual_seed(0)
    S, T = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
    samples, gt = random_batch(2, [(48, 48)], (48, 48), n_boxes=(2,))
    loss = randomize(FGDLoss(channels=4, **ONES))
    ref = ref_fgd(S, T, gt, [(48, 48)], loss)['total'].item()
    assert loss(S, T, samples).item() == pytest.approx(ref, rel=1e-5)
    samples[0].gt_instances.bboxes = HorizontalBoxes(gt[0])
    assert loss(S, T, samples).item() == pytest.approx(ref, rel=1e-5)


def test_identical_maps_give_zero_with_the_zero_initialised_gcblocks():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 5)
    samples, _ = random_batch(3, [(40, 40), (40, 40)], (40, 40))
    loss = FGDLoss(channels=4, **ONES)
    assert loss(x, x.clone(), samples).item() == 0.0
    gc = GcBlock(4)  # identity at init: last conv zero, conv_mask bias zero
    assert torch.equal(gc(x), x) and gc.conv_mask.bias.abs().sum() == 0


def test_gradients_reach_student_and_both_gcblocks_not_teacher():
    torch.manual_seed(0)
    S = torch.randn(2, 4, 5, 5, requires_grad=True)
    T = torch.randn(2, 4, 5, 5, requires_grad=True)
    samples, _ = random_batch(4, [(40, 40), (30, 40)], (40, 40))
    loss = randomize(FGDLoss(channels=4))
    loss(S, T, samples).backward()
    assert T.grad is None
    assert S.grad.abs().sum() > 0
    for gc in (loss.gc_S, loss.gc_T):
        for name, p in gc.named_parameters():
            assert p.grad is not None, name
            # conv_mask's bias shifts every logit of the HW softmax alike: its gradient is 0
            if name != 'conv_mask.bias':
                assert p.grad.abs().sum() > 0, name


def test_empty_batch_is_a_connected_zero():
    loss = FGDLoss(channels=4)
    S = torch.zeros(0, 4, 5, 5, requires_grad=True)
    out = loss(S, torch.zeros(0, 4, 5, 5), [])
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert S.grad is not None and loss.gc_S.conv_mask.weight.grad is not None


def test_errors_are_explained():
    with pytest.raises(ValueError, match='box_scale'):
        FGDLoss(channels=4, box_scale='pad_shape')
    with pytest.raises(ValueError, match='projector'):
        FGDLoss(channels=4)(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, 4), [])
    with pytest.raises(ValueError, match='DetDataSample'):
        FGDLoss(channels=4)(torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4), None)


# ---- registry and FeatureMimic --------------------------------------------------------------
def test_build_and_feature_mimic_two_levels():
    built = MODELS.build(dict(type='densekd.FGDLoss', channels=8))
    assert isinstance(built, FGDLoss) and built.box_scale == 'batch_input_shape'
    comp = FeatureMimic(student='neck', teacher='neck',
                        loss=dict(type='densekd.FGDLoss', temp=0.5))
    torch.manual_seed(0)
    s = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
    t = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
    shapes = {'neck': [x.shape for x in t]}
    comp.setup(shapes, shapes)
    assert len(comp.losses) == 2 and all(isinstance(m, FGDLoss) for m in comp.losses)
    assert all(m.channels == 8 for m in comp.losses) and comp.losses[0] is not comp.losses[1]
    samples, _ = random_batch(5, [(60, 64), (64, 50)], (64, 64))
    out = comp({'neck': s}, {'neck': t}, samples)
    per_level = sum(comp.losses[i](s[i], t[i], samples) for i in range(2))
    assert set(out) == {'loss_fgd'} and torch.isfinite(out['loss_fgd'])
    assert out['loss_fgd'].item() == pytest.approx(per_level.item(), rel=1e-6)



@pytest.mark.parametrize('n_boxes', [(3, 2, 0), (0, 0, 0)])
def test_masks_of_all_levels_at_once_equal_each_level(n_boxes):
    # bitwise the masks of one fgd_masks call per grid: three images (one or all without
    # boxes), different frames, boxes past the grid, non-square grids
    samples, gt = random_batch(7, [(60, 64), (64, 50), (33, 64)], (64, 64), n_boxes)
    gt[0] = torch.cat([gt[0], torch.tensor([[-5., 50., 70., 80.]])]) if len(gt[0]) else gt[0]
    frames = [(60, 64), (64, 50), (33, 64)]
    sizes = [(16, 16), (8, 8), (4, 5), (2, 3), (1, 1)]
    got = fgd_masks_levels(gt, frames, sizes)
    for (fg, bg), size in zip(got, sizes):
        want_fg, want_bg = fgd_masks(gt, frames, size)
        assert torch.equal(fg, want_fg) and torch.equal(bg, want_bg)
    # FGDLoss's own entry point (the batch's frames), as FeatureMimic uses it
    loss = FGDLoss(8)
    prepared = loss.prepare_levels(samples, sizes, torch.device('cpu'))
    for (fg, bg), size in zip(prepared, sizes):
        want_fg, want_bg = loss.masks(samples, size, torch.device('cpu'))
        assert torch.equal(fg, want_fg) and torch.equal(bg, want_bg)


def test_all_levels_in_one_pass_equal_the_sum_of_the_levels_with_gradients():
    # fgd_loss_levels (FeatureMimic's path for FGD): the value and the gradients of the
    # student maps and of every level's two GcBlocks equal summing the per-level losses;
    # three levels incl. a non-square one, GcBlocks different per level
    g = torch.Generator().manual_seed(11)
    shapes = [(8, 8), (4, 4), (2, 3)]
    losses = []
    for i in range(3):
        loss = randomize(FGDLoss(6, **ONES)).double()
        with torch.no_grad():
            for p in loss.parameters():
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3 * (i + 1))
        losses.append(loss)
    s = [torch.randn(2, 6, h, w, generator=g, dtype=torch.float64, requires_grad=True)
         for h, w in shapes]
    t = [torch.randn(2, 6, h, w, generator=g, dtype=torch.float64) * 2 for h, w in shapes]
    samples, _ = random_batch(9, [(60, 64), (64, 50)], (64, 64))
    params = [p for m in losses for p in m.parameters()]
    got = FGDLoss.forward_levels(losses, s, t, samples)
    want = sum(m(a, b, samples) for m, a, b in zip(losses, s, t))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    g_got = torch.autograd.grad(got, s + params)
    g_want = torch.autograd.grad(want, s + params)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert all(x.abs().sum() > 0 for x in g_got)  # every map and parameter takes part
    # the cached cell indices made under inference mode first are usable in training
    from densekd.models.losses import fgd as fgd_module
    fgd_module._cell_levels.cache_clear()
    fgd_module._grid_cells.cache_clear()
    with torch.inference_mode():
        FGDLoss.forward_levels(losses, [x.detach() for x in s], t, samples)
    again = FGDLoss.forward_levels(losses, s, t, samples)
    torch.autograd.grad(again, s)
    torch.testing.assert_close(again, got, rtol=0, atol=0)
    # not fusable: level by level instead (None)
    assert FGDLoss.forward_levels(losses[:1], s[:1], t[:1], samples) is None
    losses[1].temp = 1.0
    assert FGDLoss.forward_levels(losses, s, t, samples) is None
    assert FGDLoss.forward_levels(losses, s, t, None) is None

def test_fused_focal_and_global_equal_the_separate_equations_with_gradients():
    from densekd.models.losses.fgd import (
        fgd_focal_and_global_losses,
        fgd_focal_loss,
        fgd_global_loss,
    )
    torch.manual_seed(1)
    S = torch.randn(2, 6, 7, 5, requires_grad=True)
    T = torch.randn(2, 6, 7, 5)
    samples, _ = random_batch(3, [(56, 40), (56, 40)], (56, 40))
    loss = randomize(FGDLoss(channels=6))
    fg_mask, bg_mask = loss.masks(samples, (7, 5), S.device)
    sp, ch = fgd_attention(T)
    separate = fgd_focal_loss(S, T, fg_mask, bg_mask, sp, ch) + (
        fgd_global_loss(S, T, loss.gc_S, loss.gc_T),)
    fused = fgd_focal_and_global_losses(S, T, fg_mask, bg_mask, sp, ch, loss.gc_S, loss.gc_T)
    params = [S, *loss.parameters()]
    for a, b in zip(separate, fused):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        for ga, gb in zip(torch.autograd.grad(a, params, retain_graph=True, allow_unused=True),
                          torch.autograd.grad(b, params, retain_graph=True, allow_unused=True)):
            if ga is None:
                assert gb is None or gb.abs().max() == 0
            else:
                torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-5)


def test_gcblock_matrix_products_equal_the_conv_module_with_gradients():
    # GcBlock computes its 1x1 convs as matrix products on the convs' own parameters:
    # same output and parameter gradients as running the official conv layout (ref_gc)
    torch.manual_seed(2)
    gc = randomize(FGDLoss(channels=6)).gc_S
    for p in gc.parameters():  # LayerNorm and conv_mask bias too
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 6, 5, 4, requires_grad=True)
    got, want = gc(x), ref_gc(x, gc)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    upstream = torch.randn_like(want)
    params = [x, *gc.parameters()]
    for a, b in zip(torch.autograd.grad(got, params, upstream),
                    torch.autograd.grad(want, params, upstream)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert sorted(gc.state_dict()) == sorted([
        'conv_mask.weight', 'conv_mask.bias', 'channel_add_conv.0.weight',
        'channel_add_conv.0.bias', 'channel_add_conv.1.weight', 'channel_add_conv.1.bias',
        'channel_add_conv.3.weight', 'channel_add_conv.3.bias'])
