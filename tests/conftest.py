"""Shared fixtures: toy model configs and fake batches (tests/ is not a package)."""
import os
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDENT_DET = osp.join(REPO, 'configs/toy/retinanet_r18-w16_fpn_24e_toy.py')
TEACHER_DET = osp.join(REPO, 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py')
STUDENT_SEG = osp.join(REPO, 'configs/toy/pspnet_r18-w16_1k_toy.py')
TEACHER_SEG = osp.join(REPO, 'configs/toy/pspnet_r34-w32_1500i_toy.py')

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def repo() -> str:
    return REPO


@pytest.fixture
def det_paths() -> tuple:
    return STUDENT_DET, TEACHER_DET


@pytest.fixture
def seg_paths() -> tuple:
    return STUDENT_SEG, TEACHER_SEG


@pytest.fixture
def det_batch():
    """A function (batch_size, seed, num_items) -> an mmdet data batch of 128 px images."""
    from mmdet.testing import demo_mm_inputs

    def make(batch_size=2, num_items=None, seed=0):
        torch.manual_seed(seed)
        return demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, 128, 128)] * batch_size,
                              num_items=num_items, num_classes=5)

    return make


@pytest.fixture
def seg_batch():
    """A function (batch_size, seed) -> an mmseg data batch of 128 px images, 6 classes."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    def make(batch_size=2, seed=0):
        g = torch.Generator().manual_seed(seed)
        inputs, samples = [], []
        for _ in range(batch_size):
            inputs.append(torch.randint(0, 256, (3, 128, 128), generator=g, dtype=torch.uint8))
            sample = SegDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128),
                                                 pad_shape=(128, 128)))
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, 6, (1, 128, 128), generator=g, dtype=torch.int64))
            samples.append(sample)
        return dict(inputs=inputs, data_samples=samples)

    return make


@pytest.fixture
def tiny_config(tmp_path):
    """A function writing a copy of a toy detection config that trains on a tiny toy set.

    ``make(base, num_train=16, num_val=8, batch_size=4, teacher_checkpoint=None,
    train_pipeline=None, extra='')`` returns the path of the new config in ``tmp_path``;
    one epoch, validation at its end, a log line per iteration; ``extra`` is config text
    appended (later assignments override).
    """
    import textwrap

    def make(base, num_train=16, num_val=8, batch_size=4, teacher_checkpoint=None,
             train_pipeline=None, extra='', name='cfg.py'):
        data = str(tmp_path / 'toy') + '/'
        toy = dict(num_train=num_train, num_val=num_val)
        train_set = dict(data_root=data, toy_params=toy)
        if train_pipeline is not None:
            train_set['pipeline'] = train_pipeline
        val_set = dict(data_root=data, toy_params=toy)
        text = textwrap.dedent(f"""
            _base_ = [{base!r}]
            data_root = {data!r}
            model = dict(teacher=dict(checkpoint={teacher_checkpoint!r}))
            train_dataloader = dict(batch_size={batch_size}, dataset={train_set!r})
            val_dataloader = dict(batch_size={batch_size}, dataset={val_set!r})
            test_dataloader = val_dataloader
            val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
            test_evaluator = val_evaluator
            train_cfg = dict(max_epochs=1, val_interval=1)
            default_hooks = dict(logger=dict(interval=1))
            """) + textwrap.dedent(extra)
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return make
