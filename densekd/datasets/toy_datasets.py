"""mmdet / mmseg dataset classes over the toy shapes data, generated on first use.

Both classes call :func:`ensure_toy_dataset` on ``data_root`` before loading, so a config that
points at e.g. ``data/toy`` works on a fresh checkout. See ``densekd/datasets/toy_data.py`` for
the layout; the config values to use are::

    # detection (mmdet CocoDataset)
    dict(type='densekd.ToyDetDataset', data_root='data/toy',
         ann_file='annotations/instances_train.json', data_prefix=dict(img='images/train/'))
    # segmentation (mmseg BaseSegDataset)
    dict(type='densekd.ToySegDataset', data_root='data/toy',
         data_prefix=dict(img_path='images/train', seg_map_path='seg/train'))

``toy_params`` (keys ``seed``, ``num_train``, ``num_val``, ``img_size``) selects the generated
variant; all datasets sharing a ``data_root`` must use the same ``toy_params``.
"""
from __future__ import annotations

from typing import Any

from mmdet.datasets import CocoDataset
from mmseg.datasets import BaseSegDataset

from densekd.registry import DATASETS

from .toy_data import CLASSES, PALETTE, SEG_CLASSES, SEG_PALETTE, ensure_toy_dataset


def _ensure(data_root: str | None, toy_params: dict[str, int] | None) -> None:
    if not data_root:
        raise ValueError('toy datasets need `data_root` (the directory of the toy data)')
    ensure_toy_dataset(data_root, **(toy_params or {}))


@DATASETS.register_module()
class ToyDetDataset(CocoDataset):
    """COCO-format detection / instance-segmentation dataset over the toy shapes.

    Args:
        data_root: Toy data directory; generated there if missing or out of date.
        toy_params: Generation parameters for :func:`ensure_toy_dataset` (defaults if None).
        **kwargs: Forwarded to :class:`mmdet.datasets.CocoDataset` (``ann_file``,
            ``data_prefix``, ``pipeline``, ...).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    # what a plain-mmdet config uses instead (densekd.utils.config.make_student_config)
    deploy_cfg = dict(type='CocoDataset', metainfo=METAINFO)

    def __init__(self, *, data_root: str, toy_params: dict[str, int] | None = None,
                 **kwargs: Any) -> None:
        _ensure(data_root, toy_params)
        super().__init__(data_root=data_root, **kwargs)


@DATASETS.register_module()
class ToySegDataset(BaseSegDataset):
    """Semantic-segmentation dataset over the toy shapes (label 0 is background, 255 ignore).

    Args:
        data_root: Toy data directory; generated there if missing or out of date.
        toy_params: Generation parameters for :func:`ensure_toy_dataset` (defaults if None).
        img_suffix: Image file suffix.
        seg_map_suffix: Label map file suffix.
        reduce_zero_label: Kept False: label 0 is the real ``background`` class.
        **kwargs: Forwarded to :class:`mmseg.datasets.BaseSegDataset` (``data_prefix``,
            ``pipeline``, ...).
    """

    METAINFO = dict(classes=SEG_CLASSES, palette=SEG_PALETTE)
    # what a plain-mmseg config uses instead (densekd.utils.config.make_student_config)
    deploy_cfg = dict(type='BaseSegDataset', metainfo=METAINFO, img_suffix='.png',
                      seg_map_suffix='.png', reduce_zero_label=False)

    def __init__(self, *, data_root: str, toy_params: dict[str, int] | None = None,
                 img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs: Any) -> None:
        _ensure(data_root, toy_params)
        super().__init__(data_root=data_root, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, reduce_zero_label=reduce_zero_label,
                         **kwargs)
