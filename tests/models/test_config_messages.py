"""Config mistakes get messages that name the fix."""
import pytest
import torch
from torch import nn

from densekd.models.taps import TapError, TapSet
from densekd.registry import MODELS, close_registered_names, unregistered_type_hint

CWD = dict(type='densekd.FeatureMimic', name='fpn_cwd', student='neck', teacher='neck',
           projector=dict(type='densekd.ConvProjector'),
           loss=dict(type='densekd.ChannelWiseDivergence', tau=1.0, loss_weight=1.0))


def build(det_paths, components):
    from densekd.models import DistillationModel

    student, teacher = det_paths
    with pytest.warns(UserWarning):  # no teacher checkpoint
        return DistillationModel(student=dict(config=student), teacher=dict(config=teacher),
                                 components=components)


def test_components_given_as_a_dict(det_paths):
    """Before: 'str is not a Module subclass' (the dict's keys were taken as components)."""
    with pytest.raises(TypeError) as err:
        build(det_paths, CWD)
    assert 'components must be a list of component configs; got a dict -- wrap it in [...]' \
        in str(err.value)


def test_a_component_entry_that_is_not_a_config(det_paths):
    with pytest.raises(TypeError, match=r'components\[0\] must be a component config dict'):
        build(det_paths, ['densekd.FeatureMimic'])


def test_a_loss_given_as_a_component(det_paths):
    with pytest.raises(TypeError, match=r'components\[0\] is a ChannelWiseDivergence, not a '
                                        r'distillation component.*densekd.FeatureMimic'):
        build(det_paths, [dict(type='densekd.ChannelWiseDivergence')])


def test_unknown_component_type_suggests_the_registered_name(det_paths):
    with pytest.raises(KeyError) as err:
        build(det_paths, [dict(CWD, type='densekd.FeatureMimik')])
    msg = str(err.value)
    assert "components[0]: type 'densekd.FeatureMimik' is not registered" in msg
    assert "did you mean 'densekd.FeatureMimic'" in msg


def test_close_names_ignore_case_and_scope():
    assert close_registered_names(MODELS, 'featuremimic')[0] == 'densekd.FeatureMimic'
    assert close_registered_names(MODELS, 'densekd.ChannelWiseDivergense')[0] == \
        'densekd.ChannelWiseDivergence'
    assert unregistered_type_hint(MODELS, 'densekd.FeatureMimic') is None  # registered
    assert unregistered_type_hint(MODELS, nn.Conv2d) is None  # a class, not a name
    hint = unregistered_type_hint(MODELS, 'densekd.Qwertyuiop')  # nothing close
    assert 'registered densekd types:' in hint and "'FeatureMimic'" in hint


def test_a_component_error_that_is_not_a_missing_type_is_unchanged(det_paths):
    # FeatureMimic's own KeyError for an unknown loss passes through as it was
    with pytest.raises(KeyError, match='loss type .densekd.NoSuchLoss. is not registered'):
        build(det_paths, [dict(CWD, loss=dict(type='densekd.NoSuchLoss'))])


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.conv(x)


class Detector(nn.Module):
    """Calls its head as ``self.head.forward(x)``, as mmdet's single-stage detectors do."""

    def __init__(self):
        super().__init__()
        self.head = Head()

    def forward(self, x):
        return self.head.forward(x)


def test_a_module_run_through_forward_records_nothing_and_the_message_says_why():
    model = Detector()
    taps = TapSet(['head', 'head.conv'], 'teacher')
    taps.attach(model)
    with taps.recording():
        model(torch.zeros(1, 3, 4, 4))
    assert taps.taps['head.conv'].num_calls == 1  # called as conv(x): hooks fire
    assert taps.taps['head'].num_calls == 0  # called as head.forward(x): they do not
    with pytest.raises(TapError) as err:
        taps.check_recorded("a dry run of teacher(mode='tensor')")
    msg = str(err.value)
    assert "teacher tap 'head' recorded nothing in a dry run of teacher(mode='tensor')" in msg
    assert 'runs it as head.forward(...)' in msg and 'hooks do not fire' in msg
    assert "Tap a submodule that it calls, e.g. ['head.conv'], or the model" in msg
    with pytest.raises(TapError, match=r'head.forward\(\.\.\.\)'):
        taps.levels('head')


def test_mmdet_retinanet_head_is_called_through_forward(det_paths):
    """The real case: RetinaNet's ``_forward`` calls ``self.bbox_head.forward(x)``."""
    from mmengine.config import Config

    cfg = Config.fromfile(det_paths[0]).model
    cfg['_scope_'] = 'mmdet'
    model = MODELS.build(cfg).eval()
    taps = TapSet(['bbox_head'], 'student')
    taps.attach(model)
    with torch.no_grad(), taps.recording():
        model(torch.zeros(1, 3, 64, 64), mode='tensor')
    with pytest.raises(TapError) as err:
        taps.check_recorded("a dry run of student(mode='tensor')")
    msg = str(err.value)
    assert "its parent" not in msg  # bbox_head is a child of the model itself
    assert 'runs it as bbox_head.forward(...)' in msg
    assert "'bbox_head.cls_convs'" in msg and "'bbox_head.retina_cls'" in msg
