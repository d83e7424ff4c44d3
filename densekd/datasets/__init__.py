"""Toy datasets: a deterministic shape-scene generator and its mmdet / mmseg dataset classes."""
from .toy_data import (
    CLASSES,
    PALETTE,
    SEG_CLASSES,
    SEG_PALETTE,
    TOY_DATA_VERSION,
    ensure_toy_dataset,
    generate_toy_dataset,
    read_toy_meta,
)

__all__ = [
    'CLASSES', 'PALETTE', 'SEG_CLASSES', 'SEG_PALETTE', 'TOY_DATA_VERSION', 'ensure_toy_dataset',
    'generate_toy_dataset', 'read_toy_meta'
]

try:  # the generator works without the OpenMMLab stack; the dataset classes need it
    from .toy_datasets import ToyDetDataset, ToySegDataset
except ModuleNotFoundError as exc:  # pragma: no cover - only without mmdet / mmseg installed
    if exc.name not in ('mmcv', 'mmdet', 'mmengine', 'mmseg'):  # top-level package absent
        raise
else:
    __all__ += ['ToyDetDataset', 'ToySegDataset']
