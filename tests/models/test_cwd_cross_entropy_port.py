"""CWD against the mmdetection-distiller port's cross-entropy (documented in
densekd/models/losses/cwd.py): larger by the teacher's entropy, the same gradient."""
import torch
import torch.nn.functional as F

from densekd.models.losses.cwd import channel_wise_divergence


def port_cross_entropy(s, t, tau):
    """pppppM/mmdetection-distiller ChannelWiseDivergence.forward, written independently:
    sum(-softmax(t / tau) * log_softmax(s / tau)) * tau^2 / (C * N), rows = N * C channels."""
    n, c, h, w = s.shape
    p_t = F.softmax(t.reshape(-1, h * w) / tau, dim=1)
    return (-p_t * F.log_softmax(s.reshape(-1, h * w) / tau, dim=1)).sum() * tau ** 2 / (c * n)


def test_port_is_kl_plus_teacher_entropy_with_the_same_gradient():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    tau = 2.0
    ours = channel_wise_divergence(s, t, tau)
    port = port_cross_entropy(s, t, tau)
    p_t = F.softmax(t.reshape(6, 20) / tau, dim=1)
    entropy = -(p_t * p_t.log()).sum() * tau ** 2 / 6
    torch.testing.assert_close(port, ours + entropy)
    assert entropy > 0.1                          # the two values differ visibly
    g_ours, = torch.autograd.grad(ours, s)
    g_port, = torch.autograd.grad(port, s)
    torch.testing.assert_close(g_ours, g_port)
