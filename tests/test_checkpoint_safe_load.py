"""mmengine checkpoints load with weights_only=True once densekd is imported, and the
allowlist stays narrow."""
import io
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import densekd  # noqa: F401  (adds the allowlist)


def test_message_hub_round_trips_with_weights_only():
    hub = MessageHub.get_instance('densekd_test_hub')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('epoch', 3)
    buf = io.BytesIO()
    torch.save({'message_hub': hub.state_dict(), 'state_dict': {'w': torch.ones(2)}}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer)
    assert history.mean() == pytest.approx(1.0)
    assert history.min() == pytest.approx(0.5)


class Evil:
    def __reduce__(self):
        return (getattr, (np.ndarray, '__class__'))


def test_getattr_is_only_allowed_for_history_buffer_statistics():
    buf = io.BytesIO()
    torch.save({'x': Evil()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='only allows'):
        torch.load(buf, weights_only=True)


def test_url_checkpoints_are_loaded_safely(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    from mmengine.runner.checkpoint import _load_checkpoint

    from densekd.utils.checkpoint import load_checkpoint_file

    torch.save({'state_dict': {'w': torch.ones(2)}}, tmp_path / 'good.pth')
    torch.save({'x': Evil()}, tmp_path / 'evil.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f'http://127.0.0.1:{server.server_address[1]}'
        assert torch.equal(load_checkpoint_file(f'{base}/good.pth')['state_dict']['w'],
                           torch.ones(2))
        with pytest.raises(pickle.UnpicklingError):
            load_checkpoint_file(f'{base}/evil.pth')
        # mmengine's load_from / init_cfg URLs go through the same loader
        assert torch.equal(_load_checkpoint(f'{base}/good.pth')['state_dict']['w'],
                           torch.ones(2))
        with pytest.raises(pickle.UnpicklingError):
            _load_checkpoint(f'{base}/evil.pth')
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match='http'):
        load_checkpoint_file('torchvision://resnet50')


# -- the allowlist survives another library's safe_globals block --------------------------
@pytest.fixture
def restore_safe_globals():
    saved = torch.serialization.get_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


class Registered:
    """A class allowlisted two ways below."""


def fork_style_allowlist() -> list:
    """What OneDL's mmengine 0.10.12 lists in its `with safe_globals(...)` around torch.load."""
    from mmengine.logging import HistoryBuffer
    return [slice, getattr, np._core.multiarray._reconstruct, np.ndarray, np.dtype,
            np._core.multiarray.scalar, type(np.dtype(np.uint32)),
            type(np.dtype(np.float64)), type(np.dtype(np.int64)), HistoryBuffer]


def saved(obj) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_a_bare_entry_is_removed_by_a_safe_globals_block_a_named_pair_is_not(
        restore_safe_globals):
    name = f'{Registered.__module__}.{Registered.__qualname__}'
    torch.serialization.add_safe_globals([Registered])  # bare: the old registration
    with torch.serialization.safe_globals([Registered]):
        pass
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        torch.load(saved({'x': Registered()}), weights_only=True)

    torch.serialization.add_safe_globals([(Registered, name)])  # as densekd registers
    with torch.serialization.safe_globals([Registered]):
        pass
    assert isinstance(torch.load(saved({'x': Registered()}), weights_only=True)['x'], Registered)


def hub_checkpoint() -> dict:
    hub = MessageHub.get_instance('densekd_test_resume_hub')
    hub.update_scalar('train/loss', 3.0)
    hub.update_scalar('train/loss', np.float32(1.0))
    return {'meta': {'epoch': 1, 'iter': 2}, 'message_hub': hub.state_dict(),
            'state_dict': {'linear.weight': torch.full((2, 3), 0.5),
                           'linear.bias': torch.tensor([1.0, -1.0])}}


def test_history_buffer_loads_after_the_forks_safe_globals_block(restore_safe_globals):
    from densekd.utils.checkpoint import allow_mmengine_checkpoint_globals

    torch.serialization.clear_safe_globals()
    allow_mmengine_checkpoint_globals()
    with torch.serialization.safe_globals(fork_style_allowlist()):
        pass
    loaded = torch.load(saved(hub_checkpoint()), weights_only=True)
    history = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer)
    assert history.mean() == pytest.approx(2.0)  # (3 + 1) / 2
    assert history.min() == pytest.approx(1.0)


# -- every checkpoint mmengine's Runner loads goes through densekd's loader ----------------
MARKER_CODE = 'open({!r}, "w").close()'


class Payload:
    """Unpickling runs code: creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (MARKER_CODE.format(self.marker),))


class FallbackTorch:
    """`torch` as a fallback-style mmengine sees it: a refused file is retried unsafely."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name):
        return getattr(torch, name)

    def load(self, f, map_location=None, **kwargs):
        self.calls += 1
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            return torch.load(f, map_location=map_location, weights_only=False)


def tiny_runner(work_dir, load_from, resume):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.linear(inputs)

    return Runner(model=Tiny(), work_dir=str(work_dir), load_from=load_from, resume=resume,
                  experiment_name=f'safe_load_{osp.basename(osp.dirname(work_dir))}')


@pytest.fixture
def fallback_mmengine(monkeypatch):
    import mmengine.runner.checkpoint as mmengine_checkpoint

    fake = FallbackTorch()
    monkeypatch.setattr(mmengine_checkpoint, 'torch', fake)
    return fake


def test_fallback_loader_would_run_the_payload(tmp_path, fallback_mmengine):
    """The control: mmengine's own local loader over a fallback torch.load is unsafe."""
    from mmengine.runner.checkpoint import load_from_local

    marker = tmp_path / 'ran'
    torch.save({'state_dict': {}, 'x': Payload(str(marker))}, tmp_path / 'evil.pth')
    load_from_local(str(tmp_path / 'evil.pth'), 'cpu')
    assert marker.exists() and fallback_mmengine.calls == 1


@pytest.mark.parametrize('resume', [False, True], ids=['load_from', 'resume'])
def test_runner_load_from_and_resume_refuse_a_malicious_checkpoint(
        tmp_path, fallback_mmengine, resume):
    from mmengine.runner.checkpoint import CheckpointLoader

    from densekd.utils.checkpoint import load_from_local_weights_only

    marker = tmp_path / 'ran'
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload(str(marker))}, evil)
    assert CheckpointLoader._get_checkpoint_loader(str(evil)) is load_from_local_weights_only
    runner = tiny_runner(tmp_path / 'work', str(evil), resume)
    with pytest.raises(pickle.UnpicklingError, match='exec'):
        runner.load_or_resume()
    assert not marker.exists()
    assert fallback_mmengine.calls == 0  # mmengine's torch.load was never reached


def test_runner_loads_a_resume_checkpoint_after_the_forks_safe_globals_block(
        tmp_path, fallback_mmengine, restore_safe_globals):
    path = tmp_path / 'epoch_1.pth'
    torch.save(hub_checkpoint(), path)
    with torch.serialization.safe_globals(fork_style_allowlist()):
        pass
    runner = tiny_runner(tmp_path / 'work', str(path), False)
    runner.load_or_resume()
    assert torch.equal(runner.model.linear.weight, torch.full((2, 3), 0.5))
    assert torch.equal(runner.model.linear.bias, torch.tensor([1.0, -1.0]))
    assert fallback_mmengine.calls == 0
