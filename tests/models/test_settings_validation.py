"""Loss and component settings are checked when built, with messages naming the key."""
import inspect
import math
import re

import pytest

import densekd.models  # noqa: F401  (fills the registry)
from densekd.models.losses import _checks
from densekd.registry import MODELS

# a weight keyword: loss_weight, cls_weight, ... and FGD's alpha_fgd, beta_fgd, ...
WEIGHT_KEY = re.compile(r'(^|_)weight$|^(alpha|beta|gamma|lambda)_')
# values for constructor arguments without a default (filled by FeatureMimic at build)
REQUIRED = {'channels': 4}


def registered_losses():
    """Every densekd loss in MODELS: names ending in Loss/Divergence, plus any other class
    defined in densekd.models.losses (PixelWiseKD)."""
    out = []
    for name, cls in sorted(MODELS.module_dict.items()):
        if not cls.__module__.startswith('densekd.'):
            continue
        if name.endswith(('Loss', 'Divergence')) or \
                cls.__module__.startswith('densekd.models.losses'):
            out.append(cls)
    return out


def weight_keys(cls):
    return [p for p in inspect.signature(cls.__init__).parameters if WEIGHT_KEY.search(p)]


def build(cls, **kwargs):
    params = inspect.signature(cls.__init__).parameters
    required = {k: REQUIRED[k] for k, p in params.items()
                if k != 'self' and p.default is inspect.Parameter.empty and k not in kwargs
                and p.kind is p.POSITIONAL_OR_KEYWORD}
    return cls(**required, **kwargs)


LOSSES = registered_losses()
CASES = [(cls, key) for cls in LOSSES for key in weight_keys(cls)]
BAD = [('ten', TypeError), (None, TypeError), (True, TypeError), (float('nan'), ValueError),
       (float('inf'), ValueError), (-1.0, ValueError)]


def test_the_registry_lists_the_known_losses():
    names = {c.__name__ for c in LOSSES}
    # the losses of every method in densekd at the time of writing; new ones add to this
    assert {'ChannelWiseDivergence', 'PixelWiseKD', 'L2Loss', 'MGDLoss', 'PKDLoss', 'FGDLoss',
            'GIDFeatureLoss', 'GIDRelationLoss', 'GIDResponseLoss', 'PCALoss', 'GLLoss',
            'ScaleKDSpatialLoss', 'ScaleKDFrequencyLoss', 'HungarianDistillLoss',
            'TargetAwareFeatureLoss'} <= names


@pytest.mark.parametrize('cls', LOSSES, ids=lambda c: c.__name__)
def test_every_loss_has_a_weight_keyword_and_builds_with_its_defaults(cls):
    assert weight_keys(cls), (f'{cls.__name__} has no weight keyword this test recognises '
                              f'({WEIGHT_KEY.pattern}); name it loss_weight or *_weight')
    build(cls)
    for key in weight_keys(cls):
        build(cls, **{key: 0})  # 0 switches a term off: allowed


@pytest.mark.parametrize('value, error', BAD, ids=lambda v: repr(v))
@pytest.mark.parametrize('cls, key', CASES, ids=lambda v: getattr(v, '__name__', v))
def test_a_bad_weight_is_refused_naming_class_key_and_value(cls, key, value, error):
    with pytest.raises(error) as err:
        build(cls, **{key: value})
    msg = str(err.value)
    assert cls.__name__ in msg and key in msg and repr(value) in msg
    assert 'finite number >= 0' in msg


@pytest.mark.parametrize('cls_name, key, value, error, allowed', [
    ('ChannelWiseDivergence', 'tau', 0, ValueError, '> 0'),
    ('ChannelWiseDivergence', 'tau', -1, ValueError, '> 0'),
    ('ChannelWiseDivergence', 'tau', float('nan'), ValueError, '> 0'),
    ('ChannelWiseDivergence', 'tau', '4', TypeError, '> 0'),
    ('PixelWiseKD', 'tau', 0.0, ValueError, '> 0'),
    ('FGDLoss', 'temp', 0, ValueError, '> 0'),
    ('TargetAwareFeatureLoss', 'min_value', 0.0, ValueError, '> 0'),
    ('MGDLoss', 'mask_ratio', 1.5, ValueError, '[0.0, 1.0]'),
    ('GIDRelationLoss', 'beta', -1.0, ValueError, '[0.0, inf]'),
    ('L2Loss', 'reduction', 'sum', ValueError, "('mean', 'batchmean')"),
    ('FGDLoss', 'box_scale', 'pad_shape', ValueError, "('img_shape', 'batch_input_shape')"),
    ('HungarianDistillLoss', 'weighting', 'score', ValueError, "('teacher_score', None)"),
    ('PCALoss', 'value', 'kl', ValueError, "('relation', 'mse')"),
])
def test_temperatures_ranges_and_choices(cls_name, key, value, error, allowed):
    cls = MODELS.get(cls_name)
    with pytest.raises(error) as err:
        build(cls, **{key: value})
    msg = str(err.value)
    assert f'{cls_name}: {key} must be' in msg and allowed in msg and repr(value) in msg


def test_valid_temperatures_are_kept():
    cwd = MODELS.build(dict(type='densekd.ChannelWiseDivergence', tau=0.5, loss_weight=0))
    assert cwd.tau == 0.5 and cwd.loss_weight == 0


def test_check_helpers_accept_numpy_and_ints():
    np = pytest.importorskip('numpy')
    assert _checks.check_weight('X', 'w', np.float32(2.0)) == 2.0
    assert _checks.check_positive('X', 't', 3) == 3
    assert _checks.check_range('X', 'p', 1, 0, 1) == 1
    with pytest.raises(ValueError, match=r'X: p must be a number in \[0, 1\), got 1'):
        _checks.check_range('X', 'p', 1, 0, 1, high_open=True)
    assert math.isclose(_checks.check_weight('X', 'w', 0.0), 0.0)


@pytest.mark.parametrize('kwargs, key', [
    (dict(feature_weight='ten'), 'feature_weight'),
    (dict(relation_weight=float('nan')), 'relation_weight'),
    (dict(response_cls_weight=-0.1), 'response_cls_weight'),
    (dict(response_reg_weight=float('inf')), 'response_reg_weight'),
])
def test_gid_weights(kwargs, key):
    from densekd.models.components import GeneralInstanceDistill

    with pytest.raises((TypeError, ValueError), match=f'GeneralInstanceDistill: {key} must be'):
        GeneralInstanceDistill(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(pca=dict(loss_weight='ten')), 'CrossArchDistill: pca.loss_weight must be'),
    (dict(gl=dict(loss_weight=-1.0)), 'CrossArchDistill: gl.loss_weight must be'),
    (dict(teacher_feat='backbone', mvg=dict(disc_weight=float('nan'))),
     'CrossArchDistill: mvg.disc_weight must be'),
    (dict(teacher_feat='backbone', mvg=dict(prob=2.0)), r'CrossArchDistill: mvg.prob must be'),
    (dict(pca=dict(los_weight=1.0)),
     r"CrossArchDistill: unknown pca keys \['los_weight'\].*did you mean 'loss_weight'"),
])
def test_cakd_settings(kwargs, message):
    from densekd.models.components import CrossArchDistill

    with pytest.raises((TypeError, ValueError), match=message):
        CrossArchDistill(student='backbone', **kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(alpha=[(0.08, 'ten')]), r'ScaleKDDistill: alpha\[0\]\[1\] must be'),
    (dict(alpha=[(-0.08, 0.06)]), r'ScaleKDDistill: alpha\[0\]\[0\] must be'),
    (dict(alpha=[(0.08,)]), r'ScaleKDDistill: alpha\[0\] must be a pair'),
    (dict(softmax_scale=0), 'ScaleKDDistill: softmax_scale must be'),
])
def test_scalekd_settings(kwargs, message):
    from densekd.models.components import ScaleKDDistill

    with pytest.raises((TypeError, ValueError), match=message):
        ScaleKDDistill(student='backbone', teacher='backbone', student_levels=[0],
                       teacher_levels=[0], **kwargs)


@pytest.mark.parametrize('loss, error, key', [
    (dict(type='densekd.ChannelWiseDivergence', tau=0), ValueError, 'tau'),
    (dict(type='densekd.ChannelWiseDivergence', loss_weight='ten'), TypeError, 'loss_weight'),
])
def test_a_distillation_config_is_refused_at_build(det_paths, loss, error, key):
    """Before: tau=0 built and gave NaN losses; loss_weight='ten' built and failed in the
    first step with an unrelated TypeError."""
    from densekd.models import DistillationModel

    student, teacher = det_paths
    comp = dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
                projector=dict(type='densekd.ConvProjector'), loss=loss)
    with pytest.warns(UserWarning), pytest.raises(error) as err:
        DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                          components=[comp])
    assert f'ChannelWiseDivergence: {key} must be' in str(err.value)
