"""Re-normalising the student's preprocessed batch for a teacher trained differently."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ['TeacherInputAdapter', 'build_teacher_input_adapter', 'preprocessor_config']


def preprocessor_config(module: nn.Module | None) -> dict:
    """``mean`` / ``std`` / ``bgr_to_rgb`` of a built data preprocessor (mmengine's
    ``ImgDataPreprocessor`` and subclasses, mmseg's ``SegDataPreProcessor``).

    For a model whose config leaves its preprocessor to a default (e.g. a wrapper that
    takes its inner model's): what it really does. ``{}`` when it does not normalise.
    """
    if module is None or not getattr(module, '_enable_normalize', False):
        return {}
    return dict(mean=module.mean.flatten().tolist(), std=module.std.flatten().tolist(),
                bgr_to_rgb=bool(getattr(module, '_channel_conversion', False)  # mmengine
                                or getattr(module, 'channel_conversion', False)))  # mmseg


def _norm_params(cfg: dict | None, channels: int) -> tuple[list[float], list[float], bool]:
    cfg = cfg or {}
    mean = cfg.get('mean') or [0.0] * channels
    std = cfg.get('std') or [1.0] * channels
    flip = bool(cfg.get('bgr_to_rgb', False) or cfg.get('rgb_to_bgr', False))
    return list(map(float, mean)), list(map(float, std)), flip


class TeacherInputAdapter(nn.Module):
    """Map a batch normalised for the student to the teacher's normalisation.

    With raw pixels ``r``, the student sees ``x_s = (P_s r - m_s) / s_s`` and the teacher
    expects ``x_t = (P_t r - m_t) / s_t`` (``P`` a possible BGR<->RGB flip). So
    ``x_t = (P x_s * s_s' + m_s' - m_t) / s_t``, with ``P`` the flip when exactly one side
    flips and ``'`` the student's statistics permuted alike: one per-channel affine map.
    Padding added by the student's preprocessor (value 0 after normalisation) is mapped
    the same way.

    Args:
        mean_s, std_s, mean_t, std_t: per-channel statistics.
        flip: whether the channel order differs between the two.
    """

    def __init__(self, mean_s: Sequence[float], std_s: Sequence[float],
                 mean_t: Sequence[float], std_t: Sequence[float], flip: bool) -> None:
        super().__init__()
        perm = list(range(len(mean_s)))[::-1] if flip else list(range(len(mean_s)))
        m_s = torch.tensor(mean_s)[perm]
        s_s = torch.tensor(std_s)[perm]
        m_t, s_t = torch.tensor(mean_t), torch.tensor(std_t)
        self.register_buffer('perm', torch.tensor(perm), persistent=False)
        self.register_buffer('scale', (s_s / s_t).view(1, -1, 1, 1), persistent=False)
        self.register_buffer('shift', ((m_s - m_t) / s_t).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) student-normalised -> teacher-normalised."""
        return x[:, self.perm] * self.scale + self.shift


def build_teacher_input_adapter(student_pre: dict | None,
                                teacher_pre: dict | None) -> TeacherInputAdapter | None:
    """An adapter when the two preprocessors normalise differently, else None."""
    channels = len((student_pre or {}).get('mean') or (teacher_pre or {}).get('mean') or [0] * 3)
    m_s, s_s, f_s = _norm_params(student_pre, channels)
    m_t, s_t, f_t = _norm_params(teacher_pre, channels)
    same = len(m_s) == len(m_t) and all(  # float32 buffers vs config floats
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
        for a, b in zip(m_s + s_s, m_t + s_t))
    if same and f_s == f_t:
        return None
    return TeacherInputAdapter(m_s, s_s, m_t, s_t, f_s != f_t)
