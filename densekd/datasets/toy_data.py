"""Deterministic synthetic shape scenes: one generator for toy detection + segmentation data.

Layout written under ``root`` (e.g. ``data/toy``); ``<split>`` is ``train`` or ``val``, ``<id>``
is the 1-based COCO image id, zero-padded to 6 digits::

    root/images/<split>/<id>.png              RGB images, img_size x img_size
    root/seg/<split>/<id>.png                 uint8 label maps of the same scenes (mmseg format):
                                              0 = background, k = CLASSES[k - 1], 255 = ignore
                                              (the format allows it; this generator writes none)
    root/annotations/instances_<split>.json   COCO; ``file_name`` is relative to images/<split>/
    root/meta.json                            version + generation parameters (decides regeneration)

Scenes: textured background (gradient, stripes, checkerboard, blotches, pixel noise), thin
non-annotated clutter (lines, arcs, open polylines, small noise blobs), then 1-6 filled shapes of
random colour, size (~10-60 px at 128 px) and rotation. Later shapes occlude earlier ones; a
placement is rejected (and retried) if it would leave any instance with less than 30 % of its
full area or fewer than a minimum pixel count visible (60 % must lie inside the image), split it
into a tiny fragment or punch a hole into it. Hence every object pixel belongs to an annotated
instance whose visible part is one or more hole-free polygons that rasterise (pycocotools) to
exactly its pixels: COCO masks and seg maps describe the same pixels.

Every split uses one ``numpy.random.Generator(PCG64)`` seeded from (seed, split name) and images
are drawn sequentially, so output is bit-for-bit deterministic for given parameters (and the first
N images do not depend on how many are generated).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

TOY_DATA_VERSION = '1.0.0'
CLASSES: tuple[str, ...] = ('circle', 'square', 'triangle', 'star', 'cross')
SEG_CLASSES: tuple[str, ...] = ('background',) + CLASSES
PALETTE: list[tuple[int, int, int]] = [
    (220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 200, 0), (145, 30, 180)]
SEG_PALETTE: list[tuple[int, int, int]] = [(0, 0, 0)] + PALETTE
IGNORE_INDEX = 255
DEFAULT_PARAMS: dict[str, int] = dict(seed=0, num_train=512, num_val=128, img_size=128)
SPLITS = ('train', 'val')

_GENERATOR_ID = 'densekd.datasets.toy_data'
_SIZE_RANGE = (0.08, 0.47)  # object extent as a fraction of img_size (log-uniform)
_MAX_OBJECTS = 6
_EMPTY_PROB = 0.05  # probability of an image without objects
_MIN_VISIBLE_FRAC = 0.3  # of the full area, after occlusion and truncation
_MIN_INSIDE_FRAC = 0.6  # of the full area inside the image (a cut-off square looks triangular)
_MIN_VISIBLE_PX = 24  # at 128 px; scaled with image area
_MIN_FRAGMENT_PX = 8  # at 128 px; smallest allowed connected piece of a visible part
_PLACEMENT_TRIES = 10
_MIN_CONTRAST = 90.0  # L2 distance in RGB between a shape and what lies beneath it


def _shape_polygon(cls: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """Vertices (N, 2) of shape ``CLASSES[cls]`` with half-extent ``r``, centred at 0."""
    name = CLASSES[cls]
    if name == 'circle':
        t = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
        return np.stack([np.cos(t), np.sin(t)], axis=1) * r
    if name == 'square':
        pts, period = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * 0.8, np.pi / 2
    elif name == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        pts, period = np.stack([np.cos(t), np.sin(t)], axis=1) * 1.1, 2 * np.pi / 3
    elif name == 'star':
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, 1.1, 0.46)
        pts, period = np.stack([np.cos(t), np.sin(t)], axis=1) * rad[:, None], 2 * np.pi / 5
    else:  # cross / plus
        w, h = 0.32, 0.95
        pts = np.array([(-w, -h), (w, -h), (w, -w), (h, -w), (h, w), (w, w), (w, h), (-w, h),
                        (-w, w), (-h, w), (-h, -w), (-w, -w)])
        period = np.pi / 2
    a = rng.uniform(0.0, period)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T * r


def _rasterise(poly: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Rasterise an image-space polygon; returns (in-image bool mask, full pixel area)."""
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 2
    local = np.zeros((y1 - y0, x1 - x0), np.uint8)
    pts = np.round((poly - (x0, y0)) * 16).astype(np.int32)
    cv2.fillPoly(local, [pts], 1, cv2.LINE_8, shift=4)
    mask = np.zeros((size, size), bool)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
    if ix0 < ix1 and iy0 < iy1:
        mask[iy0:iy1, ix0:ix1] = local[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] > 0
    return mask, int(local.sum())


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random mix of gradient, stripes, checkerboard, blotches and pixel noise (uint8 RGB)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    img = np.empty((size, size, 3), np.float64)
    img[:] = rng.uniform(40, 215, 3)
    if rng.random() < 0.6:  # linear gradient
        a = rng.uniform(0, 2 * np.pi)
        img += (xx * np.cos(a) + yy * np.sin(a) - 0.5)[..., None] * rng.uniform(-90, 90, 3)
    if rng.random() < 0.5:  # sinusoidal stripes, random orientation / frequency / phase
        a, freq, phase = rng.uniform(0, np.pi), rng.uniform(2, 14), rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(a) + yy * np.sin(a)) + phase)
        img += wave[..., None] * rng.uniform(-30, 30, 3)
    if rng.random() < 0.3:  # low-contrast checkerboard
        cell = int(rng.integers(3, max(4, size // 5)))
        iy, ix = np.mgrid[0:size, 0:size] // cell
        img += (((ix + iy) % 2) * 2.0 - 1.0)[..., None] * rng.uniform(-15, 15, 3)
    if rng.random() < 0.4:  # smooth blotches: bilinear upsampling of a coarse random grid
        coarse = rng.normal(0.0, 1.0, (5, 5, 3)).astype(np.float32)
        smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
        img += smooth * rng.uniform(5, 25)
    if rng.random() < 0.7:  # per-pixel noise
        img += rng.standard_normal((size, size, 3)) * rng.uniform(2, 14)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _draw_clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw non-annotated distractors (thin, open or noisy: never filled shapes) in place."""
    size = img.shape[0]
    thick = max(1, round(size / 128))
    for _ in range(int(rng.integers(0, 8))):
        kind = int(rng.integers(4))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == 0:  # straight line, possibly crossing the whole image
            p = [int(v) for v in rng.integers(-size // 4, size + size // 4, 4)]
            cv2.line(img, p[:2], p[2:], colour, thick, cv2.LINE_AA)
        elif kind == 1:  # open elliptic arc
            c = [int(v) for v in rng.integers(0, size, 2)]
            axes = [int(v) for v in rng.integers(max(3, size // 16), size // 3, 2)]
            start, span = rng.uniform(0, 360), rng.uniform(30, 220)
            cv2.ellipse(img, c, axes, rng.uniform(0, 180), start, start + span, colour, thick,
                        cv2.LINE_AA)
        elif kind == 2:  # open random-walk polyline
            steps = rng.normal(0, size / 8, (int(rng.integers(3, 6)), 2))
            pts = np.rint(rng.uniform(0, size, 2) + np.cumsum(steps, axis=0)).astype(np.int32)
            cv2.polylines(img, [pts], False, colour, thick, cv2.LINE_AA)
        else:  # small blob of random-coloured pixels
            r = int(rng.integers(2, max(3, size // 24) + 1))
            cy, cx = rng.integers(0, size, 2)
            yy, xx = np.ogrid[0:size, 0:size]
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (rng.random((size, size)) < 0.6)
            img[blob] = rng.integers(0, 256, (int(blob.sum()), 3), dtype=np.uint8)


def _mask_ok(mask: np.ndarray, min_fragment: int) -> bool:
    """True if the visible mask has no holes and no connected piece below ``min_fragment``."""
    ys, xs = np.nonzero(mask)
    crop = np.pad(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8), 1)
    _, hierarchy = cv2.findContours(crop, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is not None and (hierarchy[0][:, 3] >= 0).any():
        return False
    _, _, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    return bool(stats[1:, cv2.CC_STAT_AREA].min() >= min_fragment)


def _draw_scene(rng: np.random.Generator,
                size: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, np.ndarray]]]:
    """Draw one scene; returns (RGB image, seg map, [(class index, visible bool mask)])."""
    img = _background(rng, size)
    _draw_clutter(rng, img)
    scale = (size / 128) ** 2
    min_px, min_frag = _MIN_VISIBLE_PX * scale, _MIN_FRAGMENT_PX * scale
    inst = np.zeros((size, size), np.int32)  # 0 = background, j + 1 = j-th accepted object
    classes: list[int] = []
    need: list[float] = []  # minimum visible pixel count of each accepted object
    visible: list[int] = []
    n_obj = 0 if rng.random() < _EMPTY_PROB else int(rng.integers(1, _MAX_OBJECTS + 1))
    log_lo, log_hi = np.log(_SIZE_RANGE[0] * size), np.log(_SIZE_RANGE[1] * size)
    for _ in range(n_obj):
        for _ in range(_PLACEMENT_TRIES):
            cls = int(rng.integers(len(CLASSES)))
            poly = _shape_polygon(cls, np.exp(rng.uniform(log_lo, log_hi)) / 2, rng)
            mask, full = _rasterise(poly + rng.uniform(0, size, 2), size)
            own_need = max(_MIN_VISIBLE_FRAC * full, min_px)
            if mask.sum() < max(_MIN_INSIDE_FRAC * full, min_px) or not _mask_ok(mask, min_frag):
                continue
            hidden = np.bincount(inst[mask], minlength=len(classes) + 1)[1:]
            hit = np.flatnonzero(hidden)
            if any(visible[i] - hidden[i] < need[i] for i in hit):
                continue
            if not all(_mask_ok((inst == i + 1) & ~mask, min_frag) for i in hit):
                continue
            for i in hit:
                visible[i] -= int(hidden[i])
            classes.append(cls)
            need.append(own_need)
            visible.append(int(mask.sum()))
            inst[mask] = len(classes)
            _paint(rng, img, mask)
            break
    noise = rng.uniform(0, 6)
    img = np.clip(np.rint(img + rng.standard_normal(img.shape) * noise), 0, 255).astype(np.uint8)
    lut = np.array([0] + [c + 1 for c in classes], np.uint8)
    objects = [(c, inst == j + 1) for j, c in enumerate(classes)]
    return img, lut[inst], objects


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``mask`` with a random colour that contrasts with what lies beneath, plus shading."""
    below = img[mask].astype(np.float64).mean(axis=0)
    best, best_dist = None, -1.0
    for _ in range(8):
        colour = rng.integers(0, 256, 3).astype(np.float64)
        dist = float(np.linalg.norm(colour - below))
        if dist > best_dist:
            best, best_dist = colour, dist
        if dist >= _MIN_CONTRAST:
            break
    ys, xs = np.nonzero(mask)
    a = rng.uniform(0, 2 * np.pi)
    proj = xs * np.cos(a) + ys * np.sin(a)
    proj = (proj - proj.mean()) / max(float(np.ptp(proj)), 1.0)
    shaded = best * (1.0 + rng.uniform(0, 0.4) * proj)[:, None]
    img[ys, xs] = np.clip(np.rint(shaded), 0, 255).astype(np.uint8)


def _annotation(mask: np.ndarray, cls: int, ann_id: int, img_id: int) -> dict[str, Any]:
    """COCO annotation of one visible mask: bbox, pixel area and outline polygons."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    # Trace the 2x upsampled mask: its boundary-pixel centres lie 0.25 px inside the pixel edges
    # (COCO frame, pixel i covers [i, i + 1]), so annToMask reproduces the mask exactly.
    up = mask[y0:y1, x0:x1].astype(np.uint8).repeat(2, axis=0).repeat(2, axis=1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [((c.reshape(-1, 2) + 0.5) / 2 + (x0, y0)).ravel().tolist() for c in contours]
    bbox = [x0, y0, x1 - x0, y1 - y0]
    return dict(id=ann_id, image_id=img_id, category_id=cls + 1, bbox=[float(v) for v in bbox],
                area=float(mask.sum()), iscrowd=0, segmentation=polys)


def _write_split(out: Path, split: str, num: int, seed: int, size: int) -> dict[str, int]:
    """Generate ``num`` scenes of ``split`` into ``out``; returns image/annotation counts."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [seed, zlib.crc32(split.encode())])))
    img_dir, seg_dir = out / 'images' / split, out / 'seg' / split
    img_dir.mkdir(parents=True)
    seg_dir.mkdir(parents=True)
    images, anns, empty = [], [], 0
    for img_id in range(1, num + 1):
        img, seg, objects = _draw_scene(rng, size)
        name = f'{img_id:06d}.png'
        cv2.imwrite(str(img_dir / name), img[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
        cv2.imwrite(str(seg_dir / name), seg, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        images.append(dict(id=img_id, file_name=name, width=size, height=size))
        for cls, mask in objects:
            anns.append(_annotation(mask, cls, len(anns) + 1, img_id))
        empty += not objects
    coco = dict(
        info=dict(description='densekd toy shapes', version=TOY_DATA_VERSION), licenses=[],
        images=images, annotations=anns,
        categories=[dict(id=k + 1, name=n, supercategory='shape') for k, n in enumerate(CLASSES)])
    with open(out / 'annotations' / f'instances_{split}.json', 'w') as f:
        f.write(json.dumps(coco, separators=(',', ':')))  # one-shot dumps uses the C encoder
    return dict(num_images=num, num_annotations=len(anns), num_empty=empty)


def _full_params(**params: int) -> dict[str, int]:
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise TypeError(f'unknown toy dataset parameters: {sorted(unknown)}')
    full = {k: int(params.get(k, v)) for k, v in DEFAULT_PARAMS.items()}
    if full['seed'] < 0 or full['num_train'] < 0 or full['num_val'] < 0 or full['img_size'] < 32:
        raise ValueError(f'invalid toy dataset parameters: {full}')
    return full


def read_toy_meta(root: str | os.PathLike) -> dict[str, Any] | None:
    """Return ``root/meta.json`` as a dict, or None if it is missing or unreadable."""
    try:
        with open(Path(root) / 'meta.json') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _matches(meta: dict[str, Any] | None, params: dict[str, int]) -> bool:
    return (meta is not None and meta.get('version') == TOY_DATA_VERSION
            and meta.get('params') == params)


def generate_toy_dataset(root: str | os.PathLike, seed: int = 0, num_train: int = 512,
                         num_val: int = 128, img_size: int = 128) -> dict[str, Any]:
    """Generate the toy dataset into ``root``, replacing an older toy dataset there.

    Data is written into a temporary sibling directory that is renamed to ``root`` at the end,
    so readers never see a partial dataset. If another process published a dataset with the
    same parameters first (e.g. all ranks of a distributed job), that one is kept.

    Args:
        root: Output directory (e.g. ``data/toy``).
        seed: Base seed; each split derives its own generator from (seed, split name).
        num_train: Number of training images.
        num_val: Number of validation images.
        img_size: Side of the square images in pixels (object sizes scale with it).

    Returns:
        The meta dict, as stored in ``root/meta.json``.

    Raises:
        FileExistsError: ``root`` exists, is not empty and is not a toy dataset.
    """
    root = Path(root)
    params = _full_params(seed=seed, num_train=num_train, num_val=num_val, img_size=img_size)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f'.{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    try:
        (tmp / 'annotations').mkdir(parents=True)
        counts = {split: _write_split(tmp, split, params[f'num_{split}'], seed, img_size)
                  for split in SPLITS}
        meta = dict(generator=_GENERATOR_ID, version=TOY_DATA_VERSION, params=params,
                    classes=list(CLASSES), seg_classes=list(SEG_CLASSES),
                    ignore_index=IGNORE_INDEX, splits=counts)
        with open(tmp / 'meta.json', 'w') as f:
            json.dump(meta, f, indent=2)
        return _publish(tmp, root, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Atomically move ``tmp`` to ``root``; keep a concurrently published identical dataset."""
    for _ in range(10):
        try:
            os.rename(tmp, root)  # also replaces an empty directory
            return meta
        except OSError:
            if not root.exists():
                raise
            existing = read_toy_meta(root)
            if _matches(existing, meta['params']):
                return existing
            if existing is None or existing.get('generator') != _GENERATOR_ID:
                if root.is_dir() and not any(root.iterdir()):
                    continue  # emptied meanwhile: retry the rename
                raise FileExistsError(f'{root} exists and is not a densekd toy dataset; '
                                      'refusing to overwrite it') from None
            trash = root.parent / f'.{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}'
            try:
                os.rename(root, trash)  # stale toy dataset: move aside, then retry
            except FileNotFoundError:
                pass
            shutil.rmtree(trash, ignore_errors=True)
    raise RuntimeError(f'could not publish the toy dataset at {root}')


def ensure_toy_dataset(root: str | os.PathLike, **params: int) -> dict[str, Any]:
    """Generate the toy dataset unless ``root/meta.json`` matches the version and parameters.

    Args:
        root: Dataset directory (e.g. ``data/toy``).
        **params: Any of ``seed``, ``num_train``, ``num_val``, ``img_size``; missing ones take
            the defaults of :func:`generate_toy_dataset`.

    Returns:
        The meta dict of the (existing or new) dataset.
    """
    full = _full_params(**params)
    meta = read_toy_meta(root)
    if _matches(meta, full):
        return meta
    return generate_toy_dataset(root, **full)
