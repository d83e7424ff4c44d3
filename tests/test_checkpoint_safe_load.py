"""mmengine checkpoints load with weights_only=True once densekd is imported, and the
allowlist stays narrow."""
import io
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
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match='http'):
        load_checkpoint_file('torchvision://resnet50')
