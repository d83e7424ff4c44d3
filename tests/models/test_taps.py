"""Taps: recording, levels, errors naming nearby modules, early stop."""
import pytest
import torch
from torch import nn

from densekd.models.taps import ModuleTap, StopForward, TapError, TapSet


class Neck(nn.Module):
    def __init__(self):
        super().__init__()
        self.fpn_convs = nn.ModuleList(nn.Conv2d(4, 4, 1) for _ in range(3))

    def forward(self, x):
        return tuple(conv(x[..., ::2 ** i, ::2 ** i]) for i, conv in enumerate(self.fpn_convs))


class Pyramid(nn.Module):
    """stem -> neck (a tuple of 3 maps) -> one head conv shared by the levels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.neck = Neck()
        self.shared = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return [self.shared(f) for f in self.neck(self.stem(x))]


def test_tuple_output_is_levels_and_repeated_calls_are_levels():
    model = Pyramid()
    taps = TapSet(['neck', 'shared'], 'student')
    taps.attach(model)
    x = torch.randn(1, 3, 8, 8)
    with taps.recording():
        out = model(x)
    shared = taps.levels('shared')
    assert len(shared) == 3
    for a, b in zip(shared, out):
        assert a is b
    assert [tuple(t.shape) for t in taps.levels('neck')] == [
        (1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)]


def test_nothing_recorded_outside_recording_and_buffers_cleared():
    model = Pyramid()
    taps = TapSet(['shared'], 'student')
    taps.attach(model)
    model(torch.randn(1, 3, 4, 4))
    assert taps.taps['shared'].num_calls == 0
    with taps.recording():
        model(torch.randn(1, 3, 4, 4))
    assert taps.taps['shared'].num_calls == 3
    with taps.recording():
        pass
    with pytest.raises(TapError, match='recorded nothing'):
        taps.levels('shared')


def test_missing_module_lists_nearby_names():
    taps = TapSet(['neck.fpn_conv.0'], 'teacher')
    with pytest.raises(TapError) as err:
        taps.attach(Pyramid())
    msg = str(err.value)
    assert "teacher has no module 'neck.fpn_conv.0'" in msg
    assert 'neck.fpn_convs.0' in msg


def test_inplace_change_after_record_is_detected_and_clone_fixes_it():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return torch.relu_(self.conv(x))

    model = M()
    tap = ModuleTap('conv')
    tap.attach(model)
    tap._recording = True
    model(torch.randn(1, 1, 2, 2))
    with pytest.raises(TapError, match='clone=True'):
        tap.levels()
    tap.detach()
    tap = ModuleTap('conv', clone=True)
    tap.attach(model)
    tap._recording = True
    x = -torch.ones(1, 1, 2, 2)
    with torch.no_grad():
        model.conv.weight.fill_(1.0)
        model.conv.bias.fill_(0.0)
    model(x)
    assert tap.levels()[0].min().item() == -1.0  # pre-ReLU values kept


def test_stop_when_complete_skips_the_rest():
    model = Pyramid()
    calls = []
    model.shared.register_forward_hook(lambda *a: calls.append(1))
    taps = TapSet(['neck.fpn_convs.2'], 'teacher')
    taps.attach(model)
    with taps.recording():
        model(torch.randn(1, 3, 8, 8))
    taps.set_expected_calls()
    calls.clear()
    with taps.recording(stop_when_complete=True):
        with pytest.raises(StopForward):
            model(torch.randn(1, 3, 8, 8))
    assert calls == []  # the shared head never ran
    assert taps.levels('neck.fpn_convs.2')[0].shape == (1, 4, 2, 2)


def test_detach_removes_hooks():
    model = Pyramid()
    taps = TapSet(['stem'], 'student')
    taps.attach(model)
    assert len(model.stem._forward_hooks) == 1
    taps.detach()
    assert len(model.stem._forward_hooks) == 0
