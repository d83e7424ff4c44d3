"""LAD: label encodings, the widened first conv, the dual-path loss and the teacher wrapper."""
import math
import os.path as osp
import warnings

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import densekd  # noqa: F401
from densekd.models.losses import channel_wise_divergence
from densekd.models.segmentors import LabelAssistedSegmentor, dual_path_consistency
from densekd.models.segmentors.label_encoding import (
    fixed_code_encoding,
    fixed_codes,
    label_maps_from_samples,
    label_values,
    random_code_encoding,
)
from densekd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_PSPNET = osp.join(REPO, 'configs/toy/pspnet_r18-w16_1k_toy.py')


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmseg'), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return MODELS.build(cfg)


@pytest.fixture(scope='module')
def toy_cfg():
    return Config.fromfile(TOY_PSPNET).model


def make_pair(toy_cfg, seed=0):
    """A toy RGB PSPNet and a wrapper holding its weights (both in eval mode)."""
    torch.manual_seed(seed)
    rgb = build(toy_cfg)
    wrapper = build(dict(type='densekd.LabelAssistedSegmentor', segmentor=toy_cfg))
    wrapper.load_state_dict(rgb.state_dict(), strict=True)
    return rgb.eval(), wrapper.eval()


def samples(labels, with_gt=True):
    out = []
    for lab in labels:
        s = SegDataSample(metainfo=dict(img_shape=tuple(lab.shape), ori_shape=tuple(lab.shape),
                                        pad_shape=tuple(lab.shape)))
        if with_gt:
            s.gt_sem_seg = PixelData(data=lab[None].long())
        out.append(s)
    return out


# -- encodings ---------------------------------------------------------------------------
def test_ignore_gets_its_own_value():
    labels = torch.tensor([[[0, 5, 255], [3, 255, 1]]])
    values = label_values(labels, num_classes=6, ignore_index=255)
    assert values.tolist() == [[[0, 5, 6], [3, 6, 1]]]
    with pytest.raises(ValueError, match='7'):
        label_values(torch.tensor([[[7]]]), num_classes=6)


def test_ignore_code_is_not_a_class_code():
    # every value, the ignore one included, gets a code of its own: with the noise off the
    # channel takes exactly one value per label, and the ignored pixels' differs from all
    labels = torch.tensor([[[0, 1, 2], [3, 255, 255]]])
    values = label_values(labels, 4)
    torch.manual_seed(0)
    enc = random_code_encoding(values, 5, noise_std=0.0, scale=1.0)[0, 0]
    ignore_code = enc[1, 1]
    assert enc[1, 2] == ignore_code
    class_codes = [enc[0, 0], enc[0, 1], enc[0, 2], enc[1, 0]]
    assert all(c != ignore_code for c in class_codes)
    assert len(set(c.item() for c in class_codes)) == 4
    fixed = fixed_code_encoding(values, 5, noise_std=0.0, scale=1.0)[0, 0]
    # (k - 5 // 2) * 0.1 for k = 0..4; ignore is value 4 -> 0.2
    expected = torch.tensor([[-0.2, -0.1, 0.0], [0.1, 0.2, 0.2]])
    torch.testing.assert_close(fixed, expected)


def test_fixed_codes_generalise_the_reference_voc_code():
    # the reference: (k - 11) / 10 for VOC's 21 classes + ignore
    torch.testing.assert_close(fixed_codes(22, 0.1), (torch.arange(22.0) - 11) / 10)


def test_random_encoding_matches_the_reference_formula():
    labels = torch.randint(0, 3, (2, 4, 5))
    values = label_values(labels, 3)
    g = torch.Generator().manual_seed(3)
    got = random_code_encoding(values, 4, noise_std=0.03, scale=100.0, generator=g)
    g = torch.Generator().manual_seed(3)
    codes = torch.randn(2, 4, generator=g)
    noise = torch.randn(2, 1, 4, 5, generator=g)
    expected = torch.stack([codes[n][values[n]] for n in range(2)])[:, None]
    torch.testing.assert_close(got, 100.0 * (expected + 0.03 * noise))
    # codes are per image: the same label gets different values in the two images
    assert got.shape == (2, 1, 4, 5)


def test_encoding_deterministic_under_seed_and_different_between_paths(toy_cfg):
    _, wrapper = make_pair(toy_cfg)
    x = torch.zeros(2, 3, 16, 16)
    values = label_values(torch.randint(0, 6, (2, 16, 16)), 6)
    torch.manual_seed(7)
    a1, a2 = wrapper.train_inputs(x, values), wrapper.train_inputs(x, values)
    torch.manual_seed(7)
    b1, b2 = wrapper.train_inputs(x, values), wrapper.train_inputs(x, values)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert a1.shape == (2, 4, 16, 16) and torch.equal(a1[:, :3], x)
    assert (a1[:, 3] - a2[:, 3]).abs().mean() > 10  # different codes (x100)


def test_label_maps_resized_and_padded_to_the_batch():
    gt = torch.tensor([[0, 1], [2, 3]])
    s = SegDataSample(metainfo=dict(img_shape=(4, 4)))
    s.gt_sem_seg = PixelData(data=gt[None])
    no_gt = SegDataSample(metainfo=dict(img_shape=(4, 4)))
    maps, idx = label_maps_from_samples([no_gt, s], (5, 6), ignore_index=255)
    assert idx == [1]
    expected = torch.full((5, 6), 255)
    expected[:4, :4] = gt.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(maps[0], expected)


# -- widened first conv ------------------------------------------------------------------
def test_rgb_checkpoint_loads_with_zero_label_weights(toy_cfg):
    rgb, wrapper = make_pair(toy_cfg)
    assert wrapper.first_conv_path == 'backbone.stem.0'
    w = wrapper.first_conv.weight
    assert w.shape[1] == 4
    assert torch.equal(w[:, :3], rgb.backbone.stem[0].weight)
    assert torch.count_nonzero(w[:, 3:]) == 0
    # the same through the conv alone: the pre-hook pads a 3-channel weight
    wrapper.first_conv.weight.data.normal_()
    wrapper.segmentor.backbone.load_state_dict(rgb.backbone.state_dict())
    assert torch.count_nonzero(wrapper.first_conv.weight[:, 3:]) == 0
    # init_weights also leaves the new channel at zero (the RGB part is re-initialised)
    wrapper.init_weights()
    assert torch.count_nonzero(wrapper.first_conv.weight[:, 3:]) == 0
    assert torch.count_nonzero(wrapper.first_conv.weight[:, :3]) > 0


def test_zero_label_weights_reproduce_the_rgb_model(toy_cfg):
    rgb, wrapper = make_pair(toy_cfg)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 6, (2, 32, 32))
    with torch.no_grad():
        ref = rgb(x, None, mode='tensor')
        torch.testing.assert_close(wrapper(x, None, mode='tensor'), ref)
        # with ground truth the channel is non-zero, but its weights are zero
        torch.testing.assert_close(wrapper(x, samples(labels), mode='tensor'), ref)
        p_ref = rgb.predict(x, samples(labels))
        p_got = wrapper.predict(x, samples(labels))
    for a, b in zip(p_ref, p_got):
        torch.testing.assert_close(b.seg_logits.data, a.seg_logits.data)
        assert torch.equal(b.pred_sem_seg.data, a.pred_sem_seg.data)


def test_first_conv_errors_name_the_paths():
    conv_free = torch.nn.Sequential(torch.nn.Linear(3, 3))
    from densekd.models.segmentors.label_assisted import find_first_conv
    with pytest.raises(ValueError, match='backbone.stem.0.conv'):
        find_first_conv(conv_free)
    net = torch.nn.Sequential(torch.nn.Conv2d(5, 4, 1), torch.nn.Conv2d(3, 4, 1))
    assert find_first_conv(net)[0] == '1'
    assert find_first_conv(net, '0')[0] == '0'


# -- tensor mode with and without ground truth ----------------------------------------------
def test_tensor_mode_label_channel(toy_cfg):
    _, wrapper = make_pair(toy_cfg)
    x = torch.zeros(2, 3, 16, 16)
    labels = torch.tensor([0, 5]).view(2, 1, 1).expand(2, 16, 16)
    no_gt = wrapper.assisted_inputs(x, samples(labels, with_gt=False))
    assert torch.count_nonzero(no_gt) == 0
    assert torch.equal(wrapper.assisted_inputs(x, None), no_gt)
    wrapper.fixed_noise_std = 0.0
    with_gt = wrapper.assisted_inputs(x, samples(labels))
    # K = 6 classes + ignore -> 7 values, codes (k - 3) * 0.1, x100: class 0 -> -30, 5 -> 20
    assert torch.allclose(with_gt[0, 3], torch.full((16, 16), -30.0))
    assert torch.allclose(with_gt[1, 3], torch.full((16, 16), 20.0))
    # the label channel reaches the network: non-zero label weights change the output
    with torch.no_grad():
        wrapper.first_conv.weight[:, 3:] = 0.01
        out_gt = wrapper(x, samples(labels), mode='tensor')
        out_none = wrapper(x, samples(labels, with_gt=False), mode='tensor')
        out_rgb_only = wrapper.segmentor(no_gt, None, mode='tensor')
    assert not torch.allclose(out_gt, out_none)
    torch.testing.assert_close(out_none, out_rgb_only)
    # assist_at_test=False: predict ignores the ground truth
    wrapper.assist_at_test = False
    with torch.no_grad():
        pred = wrapper.predict(x, samples(labels))
    pred_logits = torch.stack([p.seg_logits.data for p in pred])
    with torch.no_grad():
        expected = wrapper.segmentor.predict(no_gt, samples(labels))
    torch.testing.assert_close(pred_logits, torch.stack([p.seg_logits.data for p in expected]))


# -- dual-path loss ----------------------------------------------------------------------
def test_consistency_zero_for_identical_outputs():
    o = torch.randn(2, 3, 4, 5)
    assert dual_path_consistency(o, o.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_consistency_hand_formula():
    # one channel over two locations: p1 = softmax([ln 3, 0] / tau) with tau = 1 -> (3/4, 1/4),
    # p2 = (1/2, 1/2); KL(p2 || p1) + KL(p1 || p2), times tau^2 = 1, over N*C = 1
    o1 = torch.tensor([math.log(3.0), 0.0]).view(1, 1, 1, 2).requires_grad_()
    o2 = torch.zeros(1, 1, 1, 2, requires_grad=True)
    kl_12 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    kl_21 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    loss = dual_path_consistency(o1, o2, tau=1.0)
    assert loss.item() == pytest.approx(kl_12 + kl_21, rel=1e-6)
    # each term treats its second argument as a fixed target: the gradient of o1 comes from
    # CWD(o1, o2) only
    loss.backward()
    o1b = o1.detach().clone().requires_grad_()
    channel_wise_divergence(o1b, o2.detach(), 1.0).backward()
    torch.testing.assert_close(o1.grad, o1b.grad)


def test_loss_keys_and_consistency_term(toy_cfg):
    _, wrapper = make_pair(toy_cfg)
    wrapper.train()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    # (no 255 here: mmseg 1.2.2's CE with class_weight, as in the toy model, indexes the class
    # weights with the ignore value and fails)
    labels = torch.randint(0, 6, (2, 32, 32))
    losses = wrapper.loss(x, samples(labels))
    assert set(losses) == {
        'path1.decode.loss_ce', 'path1.decode.acc_seg', 'path1.aux.loss_ce', 'path1.aux.acc_seg',
        'path2.decode.loss_ce', 'path2.decode.acc_seg', 'path2.aux.loss_ce', 'path2.aux.acc_seg',
        'loss_consistency'}
    # label weights are zero at the start and BN is in train mode: both paths see the same
    # image through the same weights, so the two outputs and losses agree exactly
    assert losses['path1.decode.loss_ce'].item() == pytest.approx(
        losses['path2.decode.loss_ce'].item(), rel=1e-5)
    assert losses['loss_consistency'].item() == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():
        wrapper.first_conv.weight[:, 3:] = 1e-3
    losses = wrapper.loss(x, samples(labels))
    assert losses['loss_consistency'].item() > 1e-4
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.count_nonzero(wrapper.first_conv.weight.grad[:, 3:]) > 0
    with pytest.raises(ValueError, match='gt_sem_seg'):
        wrapper.loss(x, samples(labels, with_gt=False))


# -- checkpoint round trip ---------------------------------------------------------------
def test_la_checkpoint_round_trip(toy_cfg, tmp_path):
    from densekd.utils.checkpoint import load_weights_strict

    _, wrapper = make_pair(toy_cfg)
    with torch.no_grad():
        wrapper.first_conv.weight[:, 3:].normal_()
    path = tmp_path / 'la.pth'
    torch.save({'state_dict': wrapper.state_dict(), 'meta': {}}, path)
    assert all(k.startswith('segmentor.') for k in wrapper.state_dict())
    torch.manual_seed(5)
    fresh = build(dict(type='densekd.LabelAssistedSegmentor', segmentor=toy_cfg)).eval()
    load_weights_strict(fresh, str(path))  # strict, the teacher's loader
    assert torch.equal(fresh.first_conv.weight, wrapper.first_conv.weight)
    x = torch.randn(1, 3, 32, 32)
    labels = torch.randint(0, 6, (1, 32, 32))
    wrapper.fixed_noise_std = fresh.fixed_noise_std = 0.0
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, samples(labels), mode='tensor'),
                                   wrapper(x, samples(labels), mode='tensor'))


def test_wraps_only_encoder_decoders():
    with pytest.raises(TypeError, match='EncoderDecoder'):
        LabelAssistedSegmentor(segmentor=torch.nn.Conv2d(3, 3, 1))


def test_plain_segmentor_checkpoint_through_mmengine_loader(toy_cfg, tmp_path):
    # what `load_from=<RGB checkpoint>` and init_cfg=Pretrained do: mmengine's loader
    from mmengine.runner import load_checkpoint

    torch.manual_seed(2)
    rgb = build(toy_cfg)
    path = tmp_path / 'rgb.pth'
    torch.save({'state_dict': rgb.state_dict(), 'meta': {}}, path)
    wrapper = build(dict(type='densekd.LabelAssistedSegmentor', segmentor=toy_cfg))
    with torch.no_grad():
        wrapper.first_conv.weight.normal_()
    load_checkpoint(wrapper, str(path), map_location='cpu', strict=True)
    for key, value in rgb.state_dict().items():
        got = wrapper.state_dict()['segmentor.' + key]
        assert torch.equal(got[:, :3] if key == 'backbone.stem.0.weight' else got, value), key
    assert torch.count_nonzero(wrapper.first_conv.weight[:, 3:]) == 0


def test_distillation_model_feeds_the_teacher_its_labels():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lad/lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py'))
    cfg.model.teacher.checkpoint = None
    model = build(cfg.model)
    # the LA teacher config repeats the normalisation: no re-normalising adapter
    assert model.teacher_input is None
    teacher = model.teacher
    assert isinstance(teacher, LabelAssistedSegmentor) and not teacher.training
    with torch.no_grad():
        teacher.first_conv.weight[:, 3:] = 0.01
    teacher.fixed_noise_std = 0.0
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 6, (2, 32, 32))
    tap = 'segmentor.decode_head.conv_seg'

    def teacher_logits(data_samples):
        model.run_teacher(x, data_samples)
        out = model.teacher_taps.levels(tap)[0].clone()
        model.teacher_taps.clear()
        return out

    with_gt = teacher_logits(samples(labels))
    without = teacher_logits(samples(labels, with_gt=False))
    assert not torch.allclose(with_gt, without)
    with torch.no_grad():
        expected = teacher.segmentor(teacher.assisted_inputs(x, samples(labels)), None,
                                     mode='tensor')
    torch.testing.assert_close(with_gt, expected)


def test_teacher_normalisation_read_from_the_built_wrapper_when_its_config_omits_it():
    # a wrapper config without the repeated data_preprocessor: the wrapper takes its inner
    # segmentor's, and the DistillationModel reads that instead of assuming raw pixels
    teacher = Config.fromfile(
        osp.join(REPO, 'configs/lad/lad_teacher_pspnet_r34-w32_1500i_toy.py')).model
    teacher.pop('data_preprocessor')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/lad/lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py'))
    cfg.model.teacher = dict(model=teacher, scope='mmseg')
    model = build(cfg.model)
    assert model.teacher_input is None
