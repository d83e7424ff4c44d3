"""Tests of the toy shapes generator (densekd/datasets/toy_data.py) and its dataset classes."""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from densekd.datasets.toy_data import (
    CLASSES,
    SEG_CLASSES,
    TOY_DATA_VERSION,
    ensure_toy_dataset,
    generate_toy_dataset,
)

# pycocotools' C decoder trips numpy 2's __array__(copy=...) deprecation; harmless here
pytestmark = pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')

PARAMS = dict(seed=0, num_train=64, num_val=16, img_size=128)
SPLITS = ('train', 'val')


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


@pytest.fixture(scope='module')
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The 64 + 16 image dataset, generated once, and the seconds its generation took."""
    root = tmp_path_factory.mktemp('toy') / 'toy'
    start = time.perf_counter()
    generate_toy_dataset(root, **PARAMS)
    return root, time.perf_counter() - start


def test_generation_is_fast_and_complete(toy: tuple[Path, float]) -> None:
    root, elapsed = toy
    assert elapsed < 5.0
    meta = json.loads((root / 'meta.json').read_text())
    assert meta['version'] == TOY_DATA_VERSION and meta['params'] == PARAMS
    for split in SPLITS:
        n = PARAMS[f'num_{split}']
        assert len(list((root / 'images' / split).glob('*.png'))) == n
        assert len(list((root / 'seg' / split).glob('*.png'))) == n
        assert meta['splits'][split]['num_images'] == n
    # nothing left behind next to root (temporary directories are renamed or removed)
    assert [p.name for p in root.parent.iterdir()] == ['toy']


def test_deterministic(toy: tuple[Path, float], tmp_path: Path) -> None:
    root, _ = toy
    generate_toy_dataset(tmp_path / 'same', **PARAMS)
    assert _files(tmp_path / 'same') == _files(root)
    # images are drawn sequentially: fewer images give a byte-identical prefix
    generate_toy_dataset(tmp_path / 'prefix', **{**PARAMS, 'num_train': 8, 'num_val': 4})
    for rel in ('images/train/000008.png', 'seg/train/000008.png', 'images/val/000004.png'):
        assert (tmp_path / 'prefix' / rel).read_bytes() == (root / rel).read_bytes()
    generate_toy_dataset(tmp_path / 'other', **{**PARAMS, 'seed': 1, 'num_train': 8,
                                                'num_val': 4})
    for rel in ('images/train/000001.png', 'images/val/000001.png', 'seg/train/000001.png'):
        assert (tmp_path / 'other' / rel).read_bytes() != (root / rel).read_bytes()


@pytest.mark.parametrize('split', SPLITS)
def test_coco_annotations_valid(toy: tuple[Path, float], split: str) -> None:
    root, _ = toy
    coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
    cats = coco.loadCats(coco.getCatIds())
    assert [(c['id'], c['name']) for c in cats] == [(k + 1, n) for k, n in enumerate(CLASSES)]
    size = PARAMS['img_size']
    for img in coco.dataset['images']:
        assert (root / 'images' / split / img['file_name']).is_file()
        assert (img['width'], img['height']) == (size, size)
    anns = coco.dataset['annotations']
    assert anns and len({a['id'] for a in anns}) == len(anns) and min(a['id'] for a in anns) >= 1
    for ann in anns:
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= size and y + h <= size
        assert 0 < ann['area'] <= w * h and ann['iscrowd'] == 0
        assert ann['category_id'] in coco.getCatIds()
        assert ann['segmentation'] and all(len(p) >= 6 and len(p) % 2 == 0
                                           for p in ann['segmentation'])
        xs, ys = np.concatenate([p[0::2] for p in ann['segmentation']]), np.concatenate(
            [p[1::2] for p in ann['segmentation']])
        assert xs.min() >= x and xs.max() <= x + w and ys.min() >= y and ys.max() <= y + h


def test_some_images_are_empty(toy: tuple[Path, float]) -> None:
    root, _ = toy
    empty = 0
    for split in SPLITS:
        coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
        empty += sum(not coco.getAnnIds(imgIds=i) for i in coco.getImgIds())
    assert 0 < empty < (PARAMS['num_train'] + PARAMS['num_val']) // 4


@pytest.mark.parametrize('split', SPLITS)
def test_seg_maps_match_instances(toy: tuple[Path, float], split: str) -> None:
    """The seg map is exactly the union of the rasterised COCO polygons of the same scene.

    By construction every shape pixel belongs to an annotated, hole-free instance and the
    polygons trace a 2x upsampled mask, so pycocotools reproduces each visible mask exactly: this
    is stronger than a per-instance IoU (which another instance of the same class can lower).
    """
    root, _ = toy
    coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
    size = PARAMS['img_size']
    for img_info in coco.dataset['images']:
        img = cv2.imread(str(root / 'images' / split / img_info['file_name']), cv2.IMREAD_UNCHANGED)
        seg = cv2.imread(str(root / 'seg' / split / img_info['file_name']), cv2.IMREAD_UNCHANGED)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert seg.shape == (size, size) and seg.dtype == np.uint8
        assert set(np.unique(seg).tolist()) <= set(range(len(SEG_CLASSES)))
        rebuilt = np.zeros_like(seg)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_info['id'])):
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann['area']
            assert not rebuilt[mask].any()  # visible parts of instances are disjoint
            rebuilt[mask] = ann['category_id']
        assert np.array_equal(rebuilt, seg)


def test_ensure_regenerates_only_when_needed(tmp_path: Path) -> None:
    root = tmp_path / 'toy'
    small = dict(seed=3, num_train=4, num_val=2, img_size=64)
    meta = ensure_toy_dataset(root, **small)
    assert meta['params'] == small and meta['splits']['val']['num_images'] == 2
    stamp = (root / 'meta.json').stat().st_mtime_ns, (root / 'images/train/000001.png').stat()
    assert ensure_toy_dataset(root, **small) == meta
    assert (root / 'meta.json').stat().st_mtime_ns == stamp[0]
    assert (root / 'images/train/000001.png').stat().st_ino == stamp[1].st_ino
    # a concurrent writer that loses the race keeps the published identical dataset
    assert generate_toy_dataset(root, **small) == meta
    assert (root / 'meta.json').stat().st_mtime_ns == stamp[0]
    meta = ensure_toy_dataset(root, **{**small, 'num_val': 3})
    assert meta['params']['num_val'] == 3
    assert len(list((root / 'images' / 'val').glob('*.png'))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['toy']
    with pytest.raises(TypeError):
        ensure_toy_dataset(root, num_test=3)


def test_refuses_to_overwrite_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / 'real').mkdir()
    (tmp_path / 'real' / 'keep.txt').write_text('not toy data')
    with pytest.raises(FileExistsError):
        ensure_toy_dataset(tmp_path / 'real', num_train=2, num_val=1, img_size=64)
    assert (tmp_path / 'real' / 'keep.txt').read_text() == 'not toy data'


def test_dataset_classes(tmp_path: Path) -> None:
    import densekd.datasets.toy_datasets  # noqa: F401  (fails loudly if mmdet / mmseg are absent)
    from densekd.registry import DATASETS

    root = str(tmp_path / 'toy')
    params = dict(seed=0, num_train=6, num_val=3, img_size=64)
    det = DATASETS.build(dict(
        type='densekd.ToyDetDataset', data_root=root, toy_params=params, test_mode=True,
        ann_file='annotations/instances_val.json', data_prefix=dict(img='images/val/'),
        pipeline=[]))
    assert len(det) == 3 and tuple(det.metainfo['classes']) == CLASSES
    info = det.get_data_info(0)
    assert Path(info['img_path']).is_file() and info['height'] == 64
    assert all(0 <= i['bbox_label'] < len(CLASSES) for i in info['instances'])
    seg = DATASETS.build(dict(
        type='densekd.ToySegDataset', data_root=root, toy_params=params,
        data_prefix=dict(img_path='images/train', seg_map_path='seg/train'), pipeline=[]))
    assert len(seg) == 6 and tuple(seg.metainfo['classes']) == SEG_CLASSES
    info = seg.get_data_info(0)
    assert Path(info['img_path']).is_file() and Path(info['seg_map_path']).is_file()
    assert Path(info['img_path']).name == Path(info['seg_map_path']).name
