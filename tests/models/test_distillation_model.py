"""The distillation model on toy RetinaNet / PSPNet pairs: teacher contract, taps,
projector sizing, loss keys, checkpoints of the trainable part only."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper

from densekd.models import DistillationModel, TapError

CWD = dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
           loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=10.0))


def build(det_paths, components=(CWD,), student_checkpoint=None, **kwargs):
    student, teacher = det_paths
    kwargs.setdefault('teacher', dict(config=teacher))
    with pytest.warns(UserWarning, match='no checkpoint'):
        return DistillationModel(
            student=dict(config=student, checkpoint=student_checkpoint),
            components=list(components), **kwargs)


def count_calls(module):
    calls = []
    module.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def test_teacher_frozen_in_eval_and_unchanged_by_training(det_paths, det_batch):
    model = build(det_paths)
    model.init_weights()
    model.train()
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    student_before = copy.deepcopy(model.student.state_dict())
    optim = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01))
    for seed in range(2):
        log = model.train_step(det_batch(seed=seed), optim)
        assert 'distill.fpn_cwd.loss_cwd' in log and 'loss_cls' in log
        assert log['distill.fpn_cwd.loss_cwd'] > 0
    assert not model.teacher.training
    assert all(not m.training for m in model.teacher.modules())
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())
    for key, value in model.teacher.state_dict().items():  # BN running stats included
        assert torch.equal(value, teacher_before[key]), key
    changed = [k for k, v in model.student.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert changed


def test_teacher_runs_only_to_its_taps(det_paths, det_batch):
    model = build(det_paths)
    head_calls = count_calls(model.teacher.bbox_head.retina_cls)
    neck_calls = count_calls(model.teacher.neck)
    data = model.data_preprocessor(det_batch(), True)
    model.loss(**data)
    assert neck_calls == [1] and head_calls == []
    model.teacher_early_exit = False
    model.loss(**data)
    assert len(head_calls) == 5  # one call per FPN level


def test_repeated_module_tap_counts_levels(det_paths, det_batch):
    comp = dict(type='densekd.FeatureMimic', student='bbox_head.retina_cls',
                teacher='bbox_head.retina_cls',
                loss=dict(type='densekd.ChannelWiseDivergence'))
    model = build(det_paths, [comp])
    assert model.teacher_taps.taps['bbox_head.retina_cls'].expected_calls == 5
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    assert losses['distill.feature_mimic.loss_cwd'] > 0


def test_projectors_are_sized_from_the_dry_run(det_paths):
    comp = dict(CWD, projector=dict(type='densekd.ConvProjector'))
    student, teacher = det_paths
    from mmengine.config import Config

    t_model = Config.fromfile(teacher).model
    t_model.neck.out_channels = 32
    t_model.bbox_head.in_channels = 32
    model = build(det_paths, [comp], teacher=dict(model=t_model, scope='mmdet'))
    projectors = model.components['fpn_cwd'].projectors
    assert len(projectors) == 5
    conv = projectors[0].layers[0]
    assert (conv.in_channels, conv.out_channels) == (64, 32)
    with pytest.raises(ValueError, match='no projector'):
        build(det_paths, [CWD], teacher=dict(model=t_model, scope='mmdet'))


def test_unknown_tap_lists_nearby_modules(det_paths):
    bad = dict(CWD, student='neck.fpn_conv.0')
    with pytest.raises(TapError) as err:
        build(det_paths, [bad])
    assert 'neck.fpn_convs.0' in str(err.value)


def test_checkpoint_holds_no_teacher_and_loads_back(det_paths):
    model = build(det_paths, [dict(CWD, projector=dict(type='densekd.ConvProjector'))])
    state = model.state_dict()
    assert not any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('components.fpn_cwd.projectors.0') for k in state)
    assert any(k.startswith('student.') for k in state)
    result = model.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    wrapper = torch.nn.Module()  # keys gain a prefix under DDP / EMA wrappers
    wrapper.module = model
    wrapped = wrapper.state_dict()
    assert not any(k.startswith('module.teacher.') for k in wrapped)
    wrapper.load_state_dict(wrapped, strict=True)


def test_teacher_checkpoint_mismatch_names_the_keys(det_paths, tmp_path):
    student, teacher = det_paths
    from mmengine.config import Config
    from mmengine.registry import MODELS

    t_model = Config.fromfile(student).model  # the student's weights, not the teacher's
    t_model['_scope_'] = 'mmdet'
    path = tmp_path / 'wrong.pth'
    torch.save({'state_dict': MODELS.build(t_model).state_dict()}, path)
    with pytest.raises(KeyError) as err:
        DistillationModel(student=dict(config=student), components=[CWD],
                          teacher=dict(config=teacher, checkpoint=str(path)))
    msg = str(err.value)
    assert 'shape mismatch' in msg and 'backbone.conv1.weight' in msg
    assert 'missing in checkpoint' in msg and 'backbone.layer1.2.conv1.weight' in msg


def test_distill_weight_zero_skips_the_teacher(det_paths, det_batch):
    model = build(det_paths, [dict(CWD, projector=dict(type='densekd.ConvProjector'))])
    calls = count_calls(model.teacher.backbone)
    model.distill_weight = 0.0
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    assert calls == []
    assert losses['distill.loss_off'].item() == 0.0 and losses['distill.loss_off'].requires_grad
    model.distill_weight = 0.5
    half = model.loss(**model.data_preprocessor(det_batch(), True))
    model.distill_weight = 1.0
    full = model.loss(**model.data_preprocessor(det_batch(), True))
    key = 'distill.fpn_cwd.loss_cwd'
    assert half[key].item() == pytest.approx(0.5 * full[key].item(), rel=1e-5)


def test_segmentation_logits_cwd(seg_paths, seg_batch):
    student, teacher = seg_paths
    comp = dict(type='densekd.FeatureMimic', name='logits_cwd', student='decode_head.conv_seg',
                teacher='decode_head.conv_seg', loss=dict(type='densekd.ChannelWiseDivergence'))
    with pytest.warns(UserWarning):
        model = DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                                  components=[comp])
    losses = model.loss(**model.data_preprocessor(seg_batch(), True))
    assert 'distill.logits_cwd.loss_cwd' in losses and 'decode.loss_ce' in losses
    model.eval()
    with torch.no_grad():
        preds = model.predict(**model.data_preprocessor(seg_batch(batch_size=1), False))
    assert preds[0].pred_sem_seg.data.shape == (1, 128, 128)


def test_segmentation_mgd_on_layer4_stops_before_the_teacher_head(seg_paths, seg_batch):
    # MGD on the last backbone stage (student 128 -> teacher 256 channels via the projector)
    # and pixel KD on the logits, as the toy MGD / pixel-KD configs
    student, teacher = seg_paths
    mgd = dict(type='densekd.FeatureMimic', name='c5_mgd', student='backbone.layer4',
               teacher='backbone.layer4', projector=dict(type='densekd.ConvProjector'),
               loss=dict(type='densekd.MGDLoss', loss_weight=2e-5, mask_ratio=0.75))
    kd = dict(type='densekd.FeatureMimic', name='logits_kd', student='decode_head.conv_seg',
              teacher='decode_head.conv_seg', loss=dict(type='densekd.PixelWiseKD'))
    for comps, head_runs in (([mgd], False), ([mgd, kd], True)):
        with pytest.warns(UserWarning):
            model = DistillationModel(student=dict(config=student),
                                      teacher=dict(config=teacher), components=comps)
        head_calls = count_calls(model.teacher.decode_head.conv_seg)  # forward() is called directly
        losses = model.loss(**model.data_preprocessor(seg_batch(), True))
        assert (head_calls == [1]) is head_runs and len(head_calls) <= 1
        proj = model.components['c5_mgd'].projectors[0].layers[0]
        assert (proj.in_channels, proj.out_channels) == (128, 256)
        for key, value in losses.items():
            if key.startswith('distill.'):
                assert torch.isfinite(value) and value > 0, key


def test_student_checkpoint_initialises_the_student_strictly(det_paths, tmp_path):
    source = build(det_paths)
    path = tmp_path / 'student.pth'
    torch.save({'state_dict': source.student.state_dict()}, path)
    model = build(det_paths, student_checkpoint=str(path))
    model.init_weights()
    for key, value in source.student.state_dict().items():
        assert torch.equal(model.student.state_dict()[key], value), key


def test_tap_changed_in_place_needs_clone(det_paths):
    # mmdet's ResNet stem: bn1 -> ReLU(inplace=True) rewrites bn1's output
    comp = dict(type='densekd.FeatureMimic', student='backbone.bn1', teacher='backbone.bn1',
                projector=dict(type='densekd.ConvProjector'), loss=dict(type='densekd.L2Loss'))
    with pytest.raises(TapError, match='clone=True'):
        build(det_paths, [comp])
    model = build(det_paths, [dict(comp, clone=True)])
    assert model.student_taps.taps['backbone.bn1'].clone


def test_teacher_checkpoint_without_num_batches_tracked_loads(det_paths, tmp_path):
    student, teacher = det_paths
    source = build(det_paths)
    state = {k: v for k, v in source.teacher.state_dict().items()
             if not k.endswith('num_batches_tracked')}
    path = tmp_path / 'old_style.pth'
    torch.save({'state_dict': state}, path)
    model = DistillationModel(student=dict(config=student), components=[CWD],
                              teacher=dict(config=teacher, checkpoint=str(path)))
    key = 'backbone.conv1.weight'
    assert torch.equal(model.teacher.state_dict()[key], state[key])


def test_init_cfg_is_refused(det_paths):
    student, teacher = det_paths
    with pytest.raises(ValueError, match='student.checkpoint'):
        DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                          components=[CWD], init_cfg=dict(type='Pretrained', checkpoint='x.pth'))


@pytest.mark.parametrize('options, tol', [
    (dict(teacher_inference_mode=True), 0.0),
    (dict(teacher_channels_last=True), 1e-5),
    (dict(teacher_inference_mode=True, teacher_channels_last=True), 1e-5),
    (dict(teacher_autocast='bf16'), 0.05),
])
def test_teacher_speed_options_keep_the_loss(det_paths, det_batch, options, tol):
    # same weights, same batch: the distillation loss must match the plain no_grad teacher
    # (exactly for inference_mode, to float rounding for channels-last, to bf16 precision)
    plain = build(det_paths)
    fast = build(det_paths, **options)
    fast.load_state_dict(plain.state_dict())
    fast.teacher.load_state_dict(plain.teacher.state_dict())
    data = plain.data_preprocessor(det_batch(), True)
    ref = plain.loss(**data)['distill.fpn_cwd.loss_cwd']
    losses = fast.loss(**data)
    got = losses['distill.fpn_cwd.loss_cwd']
    assert got.item() == pytest.approx(ref.item(), rel=tol, abs=1e-6)
    fast.parse_losses(losses)[0].backward()  # inference tensors would fail here
    assert any(p.grad is not None for p in fast.student.parameters())
    assert all(p.grad is None for p in fast.teacher.parameters())
    fast.run_teacher(data['inputs'], data['data_samples'])
    for level in fast.teacher_taps.levels('neck'):
        assert level.dtype == torch.float32 and level.is_contiguous()
        assert not level.is_inference()


def test_teacher_autocast_is_checked(det_paths):
    with pytest.raises(ValueError, match="'bf16' or 'fp16'"):
        build(det_paths, teacher_autocast='half')


def test_components_share_one_teacher_pass(det_paths, det_batch):
    # CWD and PKD on the FPN plus MGD on a backbone stage: one teacher forward serves all
    pkd = dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
               levels=[0, 1], loss=dict(type='densekd.PKDLoss', loss_weight=1.0))
    mgd = dict(type='densekd.FeatureMimic', name='c5_mgd', student='backbone.layer4',
               teacher='backbone.layer4', projector=dict(type='densekd.ConvProjector'),
               loss=dict(type='densekd.MGDLoss', loss_weight=1e-4))
    model = build(det_paths, components=(CWD, pkd, mgd))
    backbone_calls = count_calls(model.teacher.backbone)
    neck_calls = count_calls(model.teacher.neck)
    losses = model.loss(**model.data_preprocessor(det_batch(), True))
    assert backbone_calls == [1] and neck_calls == [1]
    for key in ('distill.fpn_cwd.loss_cwd', 'distill.fpn_pkd.loss_pkd',
                'distill.c5_mgd.loss_mgd'):
        assert torch.isfinite(losses[key]) and losses[key] > 0, key
    # the MGD generator is sized from the teacher's layer4, not the student's
    gen = model.components['c5_mgd'].losses[0].generation[0]
    assert gen.in_channels == model.teacher.backbone.layer4[-1].conv2.out_channels


def test_per_level_loss_must_be_a_config(det_paths):
    from densekd.models.components import FeatureMimic
    from densekd.models.losses import MGDLoss

    with pytest.raises(TypeError, match='config dict'):
        FeatureMimic(student='neck', teacher='neck', loss=MGDLoss(channels=8))
    with pytest.raises(KeyError, match='not registered'):
        FeatureMimic(student='neck', teacher='neck', loss=dict(type='densekd.NoSuchLoss'))


def test_components_see_the_models_without_owning_them(det_paths):
    model = build(det_paths)
    comp = model.components['fpn_cwd']
    assert comp.student_model is model.student and comp.teacher_model is model.teacher
    # not submodules: no duplicated parameters or state
    assert not any(k.startswith(('student', 'teacher')) for k in comp.state_dict())
    assert sum(1 for _ in comp.parameters()) == 0


def test_teacher_without_checkpoint_is_initialised(det_paths):
    # a teacher without checkpoint gets its own init_weights (models such as DETRs keep
    # uninitialised memory, possibly NaN, in some parameters until then)
    model = build(det_paths)
    assert model.teacher.is_init
    assert all(torch.isfinite(p).all() for p in model.teacher.parameters())
