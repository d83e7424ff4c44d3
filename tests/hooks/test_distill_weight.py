"""The distillation weight schedule."""
import pytest

from densekd.hooks import distill_weight_at


@pytest.mark.parametrize('iteration,epoch,kwargs,expected', [
    (0, 0, {}, 1.0),
    (0, 0, dict(warmup_iters=4), 0.25),
    (2, 0, dict(warmup_iters=4), 0.75),
    (4, 0, dict(warmup_iters=4), 1.0),
    (9, 0, dict(stop_iter=10), 1.0),
    (10, 0, dict(stop_iter=10), 0.0),
    (50, 2, dict(stop_epoch=3), 1.0),
    (51, 3, dict(stop_epoch=3), 0.0),
    (1, 0, dict(warmup_iters=4, stop_iter=1), 0.0),
])
def test_distill_weight_at(iteration, epoch, kwargs, expected):
    assert distill_weight_at(iteration, epoch, **kwargs) == pytest.approx(expected)
