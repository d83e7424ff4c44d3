"""ScaleKD: DCT, spatial/frequency losses (parity with the official formulas written out
here), the cross-attention projector (parity with the official forward), the component."""
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from densekd.models import DistillationModel
from densekd.models.losses.scalekd import (
    ScaleKDFrequencyLoss,
    dct2,
    dct_matrix,
    frequency_filter,
    idct2,
    scalekd_frequency_loss,
    scalekd_spatial_loss,
)
from densekd.models.projectors.scalekd import CrossAttentionProjector

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SWIN_TEACHER = osp.join(REPO, 'configs/toy/retinanet_swin-t32_fpn_24e_toy.py')


def official_dct_matrix(n):
    """The official (norm=None) DCT-II as a matrix: X_k = 2 sum_i x_i cos(pi k (2i+1) / 2n)."""
    m = torch.empty(n, n, dtype=torch.float64)
    for k in range(n):
        for i in range(n):
            m[k, i] = 2 * math.cos(math.pi * k * (2 * i + 1) / (2 * n))
    return m


def official_freq_loss(s, t):
    """get_freq_loss of fmdv2.py: unnormalised DCT on both axes, DC zeroed, its inverse,
    channel L2 normalisation, MSELoss(sum) / N (square maps, as the official code needs)."""
    n = s.shape[-1]
    d = official_dct_matrix(n)
    d_inv = torch.linalg.inv(d)

    def filt(x):
        freq = d @ x.double() @ d.T
        freq[:, :, 0, 0] = 0
        return (d_inv @ freq @ d_inv.T).float()

    s, t = F.normalize(filt(s), dim=1), F.normalize(filt(t), dim=1)
    return F.mse_loss(s, t, reduction='sum') / s.shape[0]


@pytest.mark.parametrize('n', [1, 4, 7])
def test_dct_is_orthonormal_and_round_trips(n):
    d = dct_matrix(n, dtype=torch.float64)
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64))
    # the orthonormal DCT-II is the official one with rows scaled: 1/(2 sqrt n), 1/sqrt(2n)
    scale = torch.full((n, 1), 1 / math.sqrt(2 * n), dtype=torch.float64)
    scale[0] = 1 / (2 * math.sqrt(n))
    torch.testing.assert_close(d, official_dct_matrix(n) * scale)
    x = torch.randn(2, 3, n, n + 2)
    torch.testing.assert_close(idct2(dct2(x)), x, atol=1e-5, rtol=1e-5)


def test_dct_of_a_constant_is_dc_only():
    x = torch.full((1, 1, 4, 6), 3.0)
    freq = dct2(x)
    assert float(freq[0, 0, 0, 0]) == pytest.approx(3.0 * math.sqrt(24))
    freq[0, 0, 0, 0] = 0
    assert freq.abs().max() < 1e-5


def test_frequency_filter_removes_each_channels_mean():
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(frequency_filter(x), x - x.mean(dim=(2, 3), keepdim=True),
                               atol=1e-5, rtol=1e-5)


def test_spatial_loss_parity_and_closed_form():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    # unit vectors: |a - b|^2 = 2 - 2 cos(a, b), summed over pixels, / batch
    cos = F.cosine_similarity(s, t, dim=1)
    assert float(scalekd_spatial_loss(s, t)) == pytest.approx(float((2 - 2 * cos).sum() / 3),
                                                              rel=1e-5)
    official = F.mse_loss(F.normalize(s, dim=1), F.normalize(t, dim=1), reduction='sum') / 3
    assert float(scalekd_spatial_loss(s, t)) == pytest.approx(float(official), rel=1e-5)
    assert float(scalekd_spatial_loss(t, t)) == 0


def test_frequency_loss_parity_zero_and_dc_invariance():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    assert float(scalekd_frequency_loss(s, t)) == pytest.approx(
        float(official_freq_loss(s, t)), rel=1e-4)
    assert float(scalekd_frequency_loss(s, s)) == pytest.approx(0.0, abs=1e-6)
    offset = torch.randn(2, 4, 1, 1) * 10
    assert float(scalekd_frequency_loss(s + offset, t)) == pytest.approx(
        float(scalekd_frequency_loss(s, t)), rel=1e-4)
    assert float(scalekd_spatial_loss(s + offset, t)) != pytest.approx(
        float(scalekd_spatial_loss(s, t)), rel=1e-2)  # the spatial view sees the offset
    loss = ScaleKDFrequencyLoss(loss_weight=0.06)
    assert float(loss(s, t)) == pytest.approx(0.06 * float(official_freq_loss(s, t)), rel=1e-4)
    non_square = scalekd_frequency_loss(torch.randn(2, 3, 4, 6), torch.randn(2, 3, 4, 6))
    assert non_square.dim() == 0


def test_losses_of_empty_inputs_are_graph_zeros():
    e = torch.zeros(0, 3, 4, 4, requires_grad=True)
    for fn in (scalekd_spatial_loss, scalekd_frequency_loss):
        value = fn(e, e.detach())
        assert float(value.detach()) == 0 and value.requires_grad


def official_projector_forward(p, x, query=None):
    """AttentionProjector.forward + WindowMultiheadPosAttention (1x1 windows) + mmcv FFN,
    written out from fmdv2.py / attention.py with the projector's parameters."""
    b, _, h, w = x.shape
    ct = p.q.out_features
    if query is None:
        pos_emb = p.query.weight.view(1, h, w, -1).permute(0, 3, 1, 2).repeat(b, 1, 1, 1)
    else:
        pos_emb = query.permute(0, 2, 1).reshape(b, -1, h, w)
    preds = p.proj_student(x) + p.pos_embed
    pos_emb = torch.flatten(p.proj_query(pos_emb).permute(0, 2, 3, 1), 1, 2)
    tokens = torch.flatten(preds.permute(0, 2, 3, 1), 1, 2)
    heads, hd = p.num_heads, ct // p.num_heads
    q = p.q(pos_emb).reshape(b, h * w, heads, hd).permute(0, 2, 1, 3)
    k = p.k(tokens).reshape(b, h * w, heads, hd).permute(0, 2, 1, 3)
    v = p.v(tokens).reshape(b, h * w, heads, hd).permute(0, 2, 1, 3)
    attn = ((q @ k.transpose(-2, -1)) * hd ** -0.5 * 5.0).softmax(dim=-1)
    out = p.proj((attn @ v).transpose(1, 2).reshape(b, h * w, ct))
    normed = p.norm(out)
    return normed + p.ffn(normed)  # mmcv FFN: identity is its (normalised) input


def test_projector_matches_the_official_forward():
    torch.manual_seed(0)
    p = CrossAttentionProjector(6, 8, (4, 4), num_heads=2).eval()
    x = torch.randn(2, 6, 4, 4)
    y = p(x)
    assert y.shape == (2, 16, 8)
    torch.testing.assert_close(y, official_projector_forward(p, x))
    query = torch.randn(2, 16, 8)
    torch.testing.assert_close(p(x, query), official_projector_forward(p, x, query))


def test_windowed_projector_attends_within_windows_in_raster_order():
    """2x2 windows on a 4x4 grid: a key outside a query's window has no influence."""
    torch.manual_seed(0)
    p = CrossAttentionProjector(6, 8, (4, 4), num_heads=2, num_windows=(2, 2)).eval()
    x = torch.randn(1, 6, 4, 4)
    tokens = (p.proj_student(x) + p.pos_embed).flatten(2).transpose(1, 2)
    query = torch.randn(1, 16, 8)
    out = p.attend(query, tokens, (4, 4))
    # direct: for each query token, attend over the tokens of its own 2x2 block
    hd = 4
    q = p.q(query).view(1, 16, 2, hd)
    k, v = p.k(tokens).view(1, 16, 2, hd), p.v(tokens).view(1, 16, 2, hd)
    expect = torch.empty(1, 16, 8)
    for i in range(16):
        yi, xi = divmod(i, 4)
        members = [j for j in range(16) if j // 4 // 2 == yi // 2 and j % 4 // 2 == xi // 2]
        logits = torch.einsum('hd,mhd->hm', q[0, i], k[0, members]) * hd ** -0.5 * 5
        expect[0, i] = torch.einsum('hm,mhd->hd', logits.softmax(-1), v[0, members]).flatten()
    torch.testing.assert_close(out, p.proj(expect))


def test_projector_resizes_positional_embedding_and_queries():
    p = CrossAttentionProjector(6, 8, (4, 4), num_heads=2)
    assert p(torch.randn(2, 6, 3, 5)).shape == (2, 15, 8)


def build(det_paths, **kwargs):
    student, _ = det_paths
    comp = dict(type='densekd.ScaleKDDistill', name='scalekd', student='backbone',
                teacher='backbone', student_levels=[2, 3], teacher_levels=[2, 3],
                alpha=[(0.08, 0.06), (0.08, 0.0)], num_heads=[4, 8], **kwargs)
    with pytest.warns(UserWarning, match='no checkpoint'):
        model = DistillationModel(student=dict(config=student),
                                  teacher=dict(config=SWIN_TEACHER), components=[comp])
    model.init_weights()
    return model.train()


@pytest.mark.parametrize('perception', [False, True])
def test_component_on_the_toy_swin_resnet_pair(det_paths, det_batch, perception):
    model = build(det_paths, perception=perception)
    comp = model.components['scalekd']
    assert len(comp.spatial) == 2 and isinstance(comp.frequency[1], torch.nn.Identity)
    assert comp.grids == [(8, 8), (4, 4)]
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    keys = sorted(k for k in losses if k.startswith('distill.'))
    assert keys == ['distill.scalekd.loss_frequency_0', 'distill.scalekd.loss_spatial_0',
                    'distill.scalekd.loss_spatial_1']
    sum(losses[k] for k in keys).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert comp.spatial[0].q.weight.grad.abs().sum() > 0
    assert comp.frequency[0].q.weight.grad.abs().sum() > 0
    assert model.student.backbone.layer3[0].downsample[0].weight.grad.abs().sum() > 0


def test_perception_loss_goes_through_the_teachers_last_stage(det_paths, det_batch):
    """Level 0's projection, run through teacher stage 4, is compared with teacher level 3."""
    torch.manual_seed(0)
    model = build(det_paths, perception=True)
    comp = model.components['scalekd']
    data = model.data_preprocessor(det_batch(), True)
    losses = model.loss(**data)
    model.run_teacher(data['inputs'], data['data_samples'])
    with model.student_taps.recording():
        model.student.extract_feat(data['inputs'])
    s = model.student_taps.levels('backbone')[2]
    t4 = model.teacher_taps.levels('backbone')[3]
    backbone = model.teacher.backbone
    x, hw = backbone.stages[2].downsample(comp.spatial[0](s), (8, 8))
    out = backbone.norm3(backbone.stages[3](x, hw)[2])
    pred = out.transpose(1, 2).reshape(t4.shape)
    expect = 0.08 * scalekd_spatial_loss(pred, t4)
    torch.testing.assert_close(losses['distill.scalekd.loss_spatial_0'], expect)


def test_component_with_token_teacher_and_class_token():
    """ViT-like teacher tokens (class token first, square grid) are laid out as a map."""
    from densekd.models import ScaleKDDistill
    torch.manual_seed(0)
    comp = ScaleKDDistill(student='s', teacher='t', student_levels=[0], teacher_levels=[0],
                          alpha=[(1.0, 1.0)], num_heads=2, num_extra_tokens=1)
    comp.bind(torch.nn.Module(), torch.nn.Module())
    comp.setup({'s': [torch.Size([1, 6, 8, 8])]}, {'t': [torch.Size([1, 17, 8])]})
    assert comp.grids == [(4, 4)]
    comp.eval()
    s, t = torch.randn(2, 6, 8, 8), torch.randn(2, 17, 8)
    losses = comp({'s': [s]}, {'t': [t]})
    t_map = t[:, 1:].transpose(1, 2).reshape(2, 8, 4, 4)
    pred = comp.spatial[0](F.interpolate(s, size=(4, 4), mode='bilinear'))
    pred = pred.transpose(1, 2).reshape(2, 8, 4, 4)
    torch.testing.assert_close(losses['loss_spatial_0'], scalekd_spatial_loss(pred, t_map))
    assert set(losses) == {'loss_spatial_0', 'loss_frequency_0'}
