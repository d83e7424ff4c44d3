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
