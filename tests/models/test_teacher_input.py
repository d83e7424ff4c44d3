"""Re-normalisation of the student's batch for a teacher with other statistics."""
import pytest
import torch

from densekd.models.distillers.teacher_input import build_teacher_input_adapter


def test_same_normalisation_needs_no_adapter():
    cfg = dict(mean=[1, 2, 3], std=[4, 5, 6], bgr_to_rgb=True)
    assert build_teacher_input_adapter(cfg, dict(cfg)) is None


def test_adapter_equals_normalising_raw_pixels_directly():
    raw_bgr = torch.rand(2, 3, 5, 5) * 255
    student = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    teacher = dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], bgr_to_rgb=False)
    rgb = raw_bgr.flip(1)
    x_s = (rgb - torch.tensor(student['mean']).view(1, 3, 1, 1)) / torch.tensor(
        student['std']).view(1, 3, 1, 1)
    x_t = (raw_bgr - torch.tensor(teacher['mean']).view(1, 3, 1, 1)) / torch.tensor(
        teacher['std']).view(1, 3, 1, 1)
    adapter = build_teacher_input_adapter(student, teacher)
    assert torch.allclose(adapter(x_s), x_t, atol=1e-3)


def test_built_preprocessor_stands_in_for_a_missing_config():
    from mmseg.models import SegDataPreProcessor

    from densekd.models.distillers.teacher_input import preprocessor_config
    cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    built = preprocessor_config(SegDataPreProcessor(**cfg))
    assert built['bgr_to_rgb'] is True
    assert built['mean'] == pytest.approx(cfg['mean'])
    assert built['std'] == pytest.approx(cfg['std'])
    # float32 buffers against the config's floats: the same normalisation, no adapter
    assert build_teacher_input_adapter(cfg, built) is None
    assert preprocessor_config(SegDataPreProcessor()) == {}      # no normalisation
    from mmdet.models import DetDataPreprocessor
    assert preprocessor_config(DetDataPreprocessor(**cfg))['bgr_to_rgb'] is True
    assert preprocessor_config(None) == {}
