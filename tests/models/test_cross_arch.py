"""CAKD (cross-architecture KD): token plumbing, PCA / GL projectors, losses, multi-view
robust training with its own optimiser, and the toy Swin -> ResNet RetinaNet pair."""
import math
import os.path as osp

import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from densekd.models import CrossArchDistill, DistillationModel
from densekd.models.components.multi_view import FeatureDiscriminator, MultiViewGenerator
from densekd.models.distillers.optim_constructor import DiscriminatorOptimWrapperConstructor
from densekd.models.losses.cakd import discriminator_loss, generator_loss, gl_loss, pca_loss
from densekd.models.projectors import GLProjector, PCAProjector
from densekd.models.projectors.tokens import (
    attention_map,
    map_to_tokens,
    merge_heads,
    qkv_from_mha,
    split_qkv,
    swin_relative_position_bias,
    swin_shift_mask,
    to_map,
    tokens_to_map,
    window_partition,
    window_reverse,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SWIN_TEACHER = osp.join(REPO, 'configs/toy/retinanet_swin-t32_fpn_24e_toy.py')
QKV = 'backbone.stages.2.blocks.1.attn.w_msa.qkv'  # a shifted block: window 4, shift 2


# -- tokens ------------------------------------------------------------------------------
def test_tokens_and_maps_round_trip_with_and_without_class_token():
    x = torch.randn(2, 5, 3, 4)
    tokens = map_to_tokens(x)
    assert tokens.shape == (2, 12, 5)
    assert torch.equal(tokens[0, 4 + 2], x[0, :, 1, 2])  # row-major: (y=1, x=2) is token 6
    assert torch.equal(tokens_to_map(tokens, (3, 4)), x)
    with_cls = torch.cat([torch.randn(2, 1, 5), tokens], dim=1)
    assert torch.equal(to_map(with_cls, (3, 4), num_extra_tokens=1), x)
    assert to_map(torch.randn(2, 1 + 16, 5), num_extra_tokens=1).shape == (2, 5, 4, 4)
    assert to_map(x) is x
    with pytest.raises(ValueError, match='square'):
        tokens_to_map(tokens)


@pytest.mark.parametrize('hw,shift', [((8, 8), 0), ((8, 8), 2), ((6, 7), 0), ((6, 7), 2)])
def test_window_partition_matches_a_direct_loop_and_reverses(hw, shift):
    x = torch.randn(2, 3, *hw)
    ws = 4
    windows = window_partition(x, ws, shift)
    hp, wp = math.ceil(hw[0] / ws) * ws, math.ceil(hw[1] / ws) * ws
    padded = torch.zeros(2, 3, hp, wp)
    padded[:, :, :hw[0], :hw[1]] = x
    rolled = torch.roll(padded, (-shift, -shift), (2, 3))
    i = 0
    for b in range(2):
        for wy in range(hp // ws):
            for wx in range(wp // ws):
                block = rolled[b, :, wy * ws:(wy + 1) * ws, wx * ws:(wx + 1) * ws]
                assert torch.equal(windows[i], block.flatten(1).T)
                i += 1
    assert torch.equal(window_reverse(windows, hw, ws, shift), x)


def swin_block_attention():
    from mmdet.models.backbones.swin import ShiftWindowMSA
    torch.manual_seed(0)
    return ShiftWindowMSA(embed_dims=8, num_heads=2, window_size=4, shift_size=2).eval()


def test_teacher_attention_from_the_qkv_tap_reproduces_the_swin_block():
    """softmax(q k^T / sqrt(d) + rel. bias + shift mask) from the tapped qkv, times v and
    through the block's proj, is exactly what mmdet's W-MSA module returned."""
    msa = swin_block_attention()
    nn.init.normal_(msa.w_msa.relative_position_bias_table, std=0.5)
    rec = {}
    msa.w_msa.qkv.register_forward_hook(lambda m, a, o: rec.__setitem__('qkv', o))
    msa.w_msa.register_forward_hook(lambda m, a, o: rec.__setitem__('out', o))
    x = torch.randn(2, 8 * 8, 8)
    with torch.no_grad():
        msa(x, (8, 8))
        q, k, v = split_qkv(rec['qkv'], 2)
        attn = attention_map(q, k, bias=swin_relative_position_bias(msa.w_msa),
                             window_mask=swin_shift_mask((8, 8), 4, 2))
        out = msa.w_msa.proj(merge_heads(attn @ v))
    torch.testing.assert_close(out, rec['out'])
    # and the tokens in the tap are the windows of the shifted map
    x_map = tokens_to_map(x, (8, 8))
    windows = window_partition(x_map, 4, 2)
    torch.testing.assert_close(rec['qkv'], msa.w_msa.qkv(windows), rtol=0, atol=0)


def test_shift_mask_separates_rolled_regions():
    mask = swin_shift_mask((8, 8), 4, 2)
    assert mask.shape == (4, 16, 16)
    assert swin_shift_mask((8, 8), 4, 0) is None
    assert (mask[0] == 0).all()  # top-left window: one region
    # bottom-right window after the roll: tokens 0 (y=0,x=0) and 3 (y=0,x=3) come from
    # different regions, tokens 0 and 1 from the same
    assert mask[3, 0, 3] == -100 and mask[3, 0, 1] == 0 and mask[3, 0, 15] == -100


def test_qkv_from_mha_gives_torch_attention_weights():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(2, 5, 8)
    _, weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
    q, k, v = qkv_from_mha(x, mha)
    assert q.shape == (2, 2, 5, 4)
    torch.testing.assert_close(attention_map(q, k), weights)


# -- PCA projector -----------------------------------------------------------------------
def teacher_qkv(b, heads, n, d, seed=1):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, heads, n, d, generator=g) for _ in range(3))


@pytest.mark.parametrize('window', [None, 4])
def test_pca_p0_is_the_pure_student_path(window):
    torch.manual_seed(0)
    proj = PCAProjector(6, 8, num_heads=2, p=0.0).train()
    x = torch.randn(2, 6, 8, 8)
    b = 2 * 4 if window else 2
    n = 16 if window else 64
    out = proj(x, teacher_qkv(b, 2, n, 4), window_size=window)
    q = proj.q(x)
    tok = window_partition(q, 4) if window else map_to_tokens(q)
    q_heads = tok.view(b, n, 2, 4).transpose(1, 2)
    assert torch.equal(out['q'], q_heads)
    k = proj.k(x)
    k_tok = window_partition(k, 4) if window else map_to_tokens(k)
    k_heads = k_tok.view(b, n, 2, 4).transpose(1, 2)
    expect = torch.softmax(q_heads @ k_heads.transpose(-1, -2) / 2.0, dim=-1)  # d = 4
    torch.testing.assert_close(out['attn'], expect)
    assert out['attn'].shape == (b, 2, n, n)


@pytest.mark.parametrize('replace', ['matrix', 'element'])
def test_pca_p1_uses_the_teachers_qkv_in_training_only(replace):
    proj = PCAProjector(6, 8, num_heads=2, p=1.0, replace=replace).train()
    x = torch.randn(2, 6, 8, 8)
    qkv = teacher_qkv(8, 2, 16, 4)
    out = proj(x, qkv, window_size=4, shift_size=2)
    assert torch.equal(out['q'], qkv[0]) and torch.equal(out['value'], qkv[2])
    mask = swin_shift_mask((8, 8), 4, 2)
    torch.testing.assert_close(out['attn'], attention_map(qkv[0], qkv[1], window_mask=mask))
    proj.eval()
    assert not torch.equal(proj(x, qkv, window_size=4)['q'], qkv[0])


def test_pca_half_replacement_mixes_per_window():
    torch.manual_seed(0)
    proj = PCAProjector(6, 8, num_heads=2, p=0.5).train()
    qkv = teacher_qkv(400, 2, 1, 4)
    out = proj(torch.randn(100, 6, 2, 2), qkv, window_size=1)
    from_teacher = (out['q'] == qkv[0]).flatten(1).all(1).float().mean()
    assert 0.35 < float(from_teacher) < 0.65


# -- GL projector ------------------------------------------------------------------------
@pytest.mark.parametrize('sharing', ['phase', 'block'])
def test_gl_weights_shared_within_groups(sharing):
    torch.manual_seed(0)
    proj = GLProjector(3, 5, group_size=(2, 2), sharing=sharing, grid=(5, 6))
    x = torch.randn(2, 3, 5, 6)
    y = proj(x)
    assert y.shape == (2, 5, 5, 6)
    for yy in range(5):
        for xx in range(6):
            g = (yy % 2, xx % 2) if sharing == 'phase' else (yy // 2, xx // 2)
            expect = x[:, :, yy, xx] @ proj.weight[g].T + proj.bias[g]
            torch.testing.assert_close(y[:, :, yy, xx], expect)


def test_gl_block_sharing_needs_its_grid():
    with pytest.raises(ValueError, match='grid'):
        GLProjector(3, 5, sharing='block')
    proj = GLProjector(3, 5, group_size=(2, 2), sharing='block', grid=(4, 4))
    with pytest.raises(ValueError, match='fixed size'):
        proj(torch.randn(1, 3, 6, 6))
    assert GLProjector(3, 5)(torch.randn(1, 3, 7, 9)).shape == (1, 5, 7, 9)


# -- losses ------------------------------------------------------------------------------
def test_pca_loss_hand_values():
    attn_t = torch.tensor([[[[0.25, 0.75], [0.5, 0.5]]]])
    attn_s = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]])
    v_s = torch.zeros(1, 1, 2, 1)  # relation: uniform 0.5
    a, b = 1.0, 2.0
    v_t = torch.tensor([a, b]).view(1, 1, 2, 1)
    r0 = 1 / (1 + math.exp(a * b - a * a))  # softmax([a*a, a*b])[0]
    r1 = 1 / (1 + math.exp(a * b - b * b))  # softmax([b*a, b*b])[1]
    value_term = ((0.5 - r0) ** 2 + (0.5 - (1 - r0)) ** 2 + (0.5 - (1 - r1)) ** 2
                  + (0.5 - r1) ** 2) / 4
    attn_term = (0.25 ** 2 * 2) / 4
    assert float(pca_loss(attn_s, attn_t, v_s, v_t)) == pytest.approx(attn_term + value_term)
    assert float(pca_loss(attn_s, attn_t, v_s, v_t, value='mse')) == pytest.approx(
        attn_term + (a * a + b * b) / 2)


def test_gl_and_adversarial_losses_hand_values():
    s, t = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2) * 2
    assert float(gl_loss(s, t)) == pytest.approx(4.0)
    half = torch.full((4,), 0.5)
    assert float(discriminator_loss(half, half)) == pytest.approx(2 * math.log(2))
    assert float(generator_loss(half)) == pytest.approx(math.log(2))
    assert float(discriminator_loss(torch.tensor([0.8]), torch.tensor([0.1]))) == \
        pytest.approx(-math.log(0.8) - math.log(0.9))


def test_empty_inputs_give_graph_zeros():
    e = torch.zeros(0, 2, 4, 4, requires_grad=True)
    for value in (pca_loss(e, e.detach(), e, e.detach()), gl_loss(e, e.detach()),
                  generator_loss(torch.zeros(0, requires_grad=True))):
        assert float(value.detach()) == 0 and value.requires_grad


# -- multi-view generator and discriminator ----------------------------------------------
def test_multi_view_generator_views():
    x = torch.randn(3, 4, 6, 6)
    gen = MultiViewGenerator(prob=1.0, views=('mask',), mask_ratio=1.0)
    assert torch.equal(gen(x), torch.zeros_like(x))
    assert gen.eval()(x) is x
    crop = MultiViewGenerator(prob=1.0, views=('crop',), crop_scale=(1.0, 1.0)).train()
    torch.testing.assert_close(crop(x), x)
    assert MultiViewGenerator(prob=0.0)(x) is x


def test_discriminator_frozen_copy_passes_gradients_to_the_input_only():
    disc = FeatureDiscriminator(4, 8)
    x = torch.randn(3, 4, 5, 5, requires_grad=True)
    out = disc.frozen(x)
    torch.testing.assert_close(out, disc(x))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in disc.parameters())
    assert disc(x).shape == (3,) and ((disc(x) > 0) & (disc(x) < 1)).all()


# -- the component on the toy Swin -> ResNet pair ----------------------------------------
def build(det_paths, mvg=None, **pca):
    student, _ = det_paths
    comp = dict(type='densekd.CrossArchDistill', name='cakd', student='backbone',
                student_level=2, teacher_attn=QKV, teacher_feat='backbone', teacher_level=2,
                pca=dict(pca), mvg=mvg)
    with pytest.warns(UserWarning, match='no checkpoint'):
        model = DistillationModel(student=dict(config=student),
                                  teacher=dict(config=SWIN_TEACHER), components=[comp])
    model.init_weights()
    return model.train()


def test_component_reads_the_swin_block_and_trains_the_student_only(det_paths, det_batch):
    model = build(det_paths, rel_pos_bias=True)
    comp = model.components['cakd']
    assert (comp.window_size, comp.shift_size) == (4, 2)
    assert comp.pca_projector.num_heads == 4 and comp.pca_projector.q.out_channels == 128
    assert comp.gl_projector.weight.shape == (4, 4, 128, 64)
    data = model.data_preprocessor(det_batch(), True)
    losses = model.loss(**data)
    assert float(losses['distill.cakd.loss_pca'].detach()) > 0
    assert float(losses['distill.cakd.loss_gl'].detach()) > 0
    total = losses['distill.cakd.loss_pca'] + losses['distill.cakd.loss_gl']
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert comp.pca_projector.q.weight.grad.abs().sum() > 0
    assert comp.gl_projector.weight.grad.abs().sum() > 0
    stage3 = model.student.backbone.layer3[0].downsample[0].weight
    assert stage3.grad.abs().sum() > 0
    assert model.student.bbox_head.retina_cls.weight.grad is None  # distillation only


def test_component_with_p1_gives_zero_attention_loss(det_paths, det_batch):
    """With the teacher's q and k the student attention is the teacher's (bias included)."""
    model = build(det_paths, p=1.0, rel_pos_bias=True, value='mse')
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    assert float(losses['distill.cakd.loss_pca'].detach()) == 0.0


def test_component_global_attention_from_a_vit_block_with_class_token():
    """attention='mha': ViT-like teacher tokens (class token first), bound directly."""
    torch.manual_seed(0)
    teacher = nn.Module()
    teacher.ln1 = nn.LayerNorm(8)
    teacher.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    comp = CrossArchDistill(student='s', student_level=0, teacher_attn='ln1',
                            teacher_feat='ln1', teacher_level=0, attention='mha',
                            mha='attn', num_extra_tokens=1, pca=dict(p=0.0))
    comp.bind(nn.Module(), teacher)
    comp.setup({'s': [torch.Size([1, 6, 4, 4])]}, {'ln1': [torch.Size([1, 17, 8])]})
    tokens = torch.randn(2, 17, 8)
    s = torch.randn(2, 6, 4, 4, requires_grad=True)
    losses = comp({'s': [s]}, {'ln1': [tokens]})
    q, k, v = qkv_from_mha(tokens[:, 1:], teacher.attn)
    out = comp.pca_projector(s, (q, k, v))
    expect = pca_loss(out['attn'], attention_map(q, k), out['value'], v)
    torch.testing.assert_close(losses['loss_pca'], expect)
    gl_expect = gl_loss(comp.gl_projector(s), tokens_to_map(tokens, (4, 4), 1))
    torch.testing.assert_close(losses['loss_gl'], gl_expect)


def test_setup_rejects_levels_of_different_stride(det_paths):
    student, _ = det_paths
    comp = dict(type='densekd.CrossArchDistill', student='backbone', student_level=1,
                teacher_attn=QKV)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match='equal stride'):
        DistillationModel(student=dict(config=student), teacher=dict(config=SWIN_TEACHER),
                          components=[comp])


# -- optimisers: discriminator first, then the model -------------------------------------
def test_discriminator_and_student_updates_in_order(det_paths, det_batch):
    model = build(det_paths, mvg=dict(prob=0.5))
    comp = model.components['cakd']
    constructor = DiscriminatorOptimWrapperConstructor(dict(
        model=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        discriminator=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
    wrappers = constructor(model)
    disc_ids = {id(p) for p in comp.discriminator.parameters()}
    model_ids = {id(p) for g in wrappers['model'].param_groups for p in g['params']}
    assert disc_ids and not disc_ids & model_ids
    assert {id(p) for g in wrappers['discriminator'].param_groups for p in g['params']} \
        == disc_ids
    assert id(comp.gl_projector.weight) in model_ids
    # one forward; the gradients each loss set alone gives, from autograd on that forward
    data = model.data_preprocessor(det_batch(), True)
    losses = model(**data, mode='loss')
    disc_loss, _ = model.parse_losses({k: v for k, v in losses.items()
                                       if k.endswith('loss_discriminator')})
    model_loss, _ = model.parse_losses({k: v for k, v in losses.items()
                                        if not k.endswith('loss_discriminator')})
    disc_params = list(comp.discriminator.parameters())
    want_disc = torch.autograd.grad(disc_loss, disc_params, retain_graph=True)
    want_gl = torch.autograd.grad(model_loss, comp.gl_projector.weight, retain_graph=True)[0]
    # the student's loss never reaches the discriminator, the discriminator's never the student
    assert all(g is None for g in torch.autograd.grad(model_loss, disc_params, retain_graph=True,
                                                      allow_unused=True))
    assert torch.autograd.grad(disc_loss, comp.gl_projector.weight, retain_graph=True,
                               allow_unused=True)[0] is None
    events = []
    for name in ('model', 'discriminator'):
        opt = wrappers[name].optimizer
        orig = opt.step

        def step(*args, _name=name, _orig=orig, **kwargs):
            disc_grad = [p.grad for p in disc_params]
            gl_grad = comp.gl_projector.weight.grad
            events.append((_name, all(g is not None and torch.allclose(g, w)
                                      for g, w in zip(disc_grad, want_disc)),
                           gl_grad is not None and torch.allclose(gl_grad, want_gl)))
            return _orig(*args, **kwargs)

        opt.step = step
    disc_before = [p.detach().clone() for p in disc_params]
    log = model.update_from_losses(losses, wrappers)
    # one backward for both, then the discriminator steps with exactly its own loss's
    # gradients, then the model with exactly the student side's (the discriminator's were
    # zeroed after its step); both from the same forward (simultaneous-gradient GAN step)
    assert events == [('discriminator', True, True), ('model', False, True)]
    assert 'distill.cakd.loss_discriminator' in log and 'distill.cakd.loss_gen' in log
    assert all(not torch.equal(a, b) for a, b in zip(disc_before, disc_params))
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())   # zeroed
    log = model.train_step(det_batch(), wrappers)          # the same through train_step
    assert 'distill.cakd.loss_discriminator' in log
    with pytest.raises(ValueError, match='own optimiser'):
        model.train_step(det_batch(), OptimWrapper(torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.1)))


def test_model_optimiser_step_leaves_the_discriminator_unchanged(det_paths, det_batch):
    model = build(det_paths, mvg=dict(prob=0.5, disc_weight=0.0))
    comp = model.components['cakd']
    wrappers = DiscriminatorOptimWrapperConstructor(dict(
        model=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.1)),
        discriminator=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))(model)
    before = [p.detach().clone() for p in comp.discriminator.parameters()]
    gl_before = comp.gl_projector.weight.detach().clone()
    model.train_step(det_batch(), wrappers)  # discriminator loss x 0: SGD leaves it alone
    assert all(torch.equal(a, b) for a, b in zip(before, comp.discriminator.parameters()))
    assert not torch.equal(gl_before, comp.gl_projector.weight)
    assert isinstance(wrappers, OptimWrapperDict)


def test_plain_optim_wrapper_path_unchanged(det_paths, det_batch):
    model = build(det_paths)
    before = model.components['cakd'].gl_projector.weight.detach().clone()
    log = model.train_step(det_batch(), OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1)))
    assert 'distill.cakd.loss_gl' in log and 'loss' in log
    assert not torch.equal(before, model.components['cakd'].gl_projector.weight)
