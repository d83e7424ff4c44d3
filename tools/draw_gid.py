"""Draw the general instances (GIs) that a GID config selects on a few toy images.

    python tools/draw_gid.py CONFIG [--checkpoint STUDENT_OR_DISTILL.pth] \
        [--teacher-checkpoint T.pth] [--images 4] [--split val] [--out work_dirs/gid_vis]

Builds the config's DistillationModel (teacher weights: ``--teacher-checkpoint``, else the
config's ``teacher.checkpoint``; student weights: ``--checkpoint``, a student-only / plain
mmdet checkpoint or a distillation checkpoint with ``student.*`` keys, else random), runs
the teacher (``run_teacher``) and the student with their taps recording, both in eval mode,
and calls the GID component's own ``select``. One PNG per image, upscaled ``--scale`` times:
ground-truth boxes green, GIs red where the box is the teacher's and blue where it is the
student's, each with its GI score.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, init_default_scope
from mmengine.structures import InstanceData

sys.path.insert(0, os.getcwd())  # so custom_imports can name modules of the current project
import densekd  # noqa: E402,F401
from densekd.models import DistillationModel, GeneralInstanceDistill  # noqa: E402
from densekd.registry import MODELS  # noqa: E402
from densekd.utils.checkpoint import load_weights_strict  # noqa: E402

GREEN, RED, BLUE = (0, 200, 0), (0, 0, 255), (255, 80, 0)  # BGR


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a GID distillation config')
    parser.add_argument('--checkpoint', help='student weights (student-only or distillation)')
    parser.add_argument('--teacher-checkpoint', help="override the config's teacher.checkpoint")
    parser.add_argument('--images', type=int, default=4, help='number of images (the first ones)')
    parser.add_argument('--split', default='val', choices=['train', 'val', 'test'])
    parser.add_argument('--out', default='work_dirs/gid_vis', help='output folder')
    parser.add_argument('--scale', type=int, default=4, help='upscaling factor of the PNGs')
    return parser.parse_args(argv)


def build_model(cfg: Config, checkpoint: str | None) -> tuple[DistillationModel, str]:
    """The distillation model in eval mode, and the name of its GID component."""
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_weights_strict(model.student, checkpoint, 'student')
    else:
        model.init_weights()
    names = [n for n, c in model.components.items() if isinstance(c, GeneralInstanceDistill)]
    if not names:
        raise SystemExit('draw_gid: the config has no densekd.GeneralInstanceDistill component')
    return model.eval(), names[0]


def load_batch(cfg: Config, split: str, num: int) -> dict:
    """The first ``num`` images of ``split``, through the val pipeline (no augmentation)."""
    ds_cfg = cfg[f'{split}_dataloader'].dataset.copy()
    ds_cfg.update(pipeline=cfg.val_dataloader.dataset.pipeline, test_mode=True)
    dataset = DATASETS.build(ds_cfg)
    return pseudo_collate([dataset[i] for i in range(min(num, len(dataset)))])


@torch.no_grad()
def select_instances(model: DistillationModel, name: str, batch: dict) -> list[InstanceData]:
    """Teacher and student forwards with taps recording, then the component's GISM."""
    data = model.data_preprocessor(batch, False)
    inputs, samples = data['inputs'], data['data_samples']
    model.run_teacher(inputs, samples)
    with model.student_taps.recording():
        model.student(inputs, samples, mode='tensor')
    student = {p: model.student_taps.levels(p) for p in model.student_taps.taps}
    teacher = {p: model.teacher_taps.levels(p) for p in model.teacher_taps.taps}
    gis = model.components[name].select(student, teacher, [s.metainfo for s in samples])
    model.student_taps.clear()
    model.teacher_taps.clear()
    return gis


def draw(img: np.ndarray, gt: np.ndarray, gis: InstanceData, scale: int) -> np.ndarray:
    """Upscaled BGR image with GT boxes (green) and GIs (red teacher / blue student)."""
    h, w = img.shape[:2]
    canvas = cv2.resize(np.ascontiguousarray(img), (w * scale, h * scale),
                        interpolation=cv2.INTER_NEAREST)

    def box(xyxy: np.ndarray, color: tuple[int, int, int]) -> tuple[int, int]:
        x1, y1, x2, y2 = (np.asarray(xyxy) * scale).round().astype(int).tolist()
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2)
        return x1, y1

    for b in gt:
        box(b, GREEN)
    for b, s, t in zip(gis.bboxes.cpu().numpy(), gis.scores.tolist(), gis.from_teacher.tolist()):
        color = RED if t else BLUE
        x1, y1 = box(b, color)
        (tw, th), _ = cv2.getTextSize(f'{s:.2f}', cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(canvas, (x1, y1), (x1 + tw + 4, y1 + th + 6), color, -1)
        cv2.putText(canvas, f'{s:.2f}', (x1 + 2, y1 + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def main(argv: list[str] | None = None) -> list[tuple[str, InstanceData]]:
    """Draw and save; returns ``(png path, selected GIs)`` per image."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if args.teacher_checkpoint:
        cfg.model.teacher.checkpoint = args.teacher_checkpoint
    model, name = build_model(cfg, args.checkpoint)
    batch = load_batch(cfg, args.split, args.images)
    gis = select_instances(model, name, batch)
    os.makedirs(args.out, exist_ok=True)
    out = []
    for img, sample, gi in zip(batch['inputs'], batch['data_samples'], gis):
        h, w = sample.img_shape
        gt = sample.gt_instances.bboxes
        gt = (gt.tensor if hasattr(gt, 'tensor') else gt).numpy()
        gt = gt * np.tile(np.asarray(sample.metainfo.get('scale_factor', (1., 1.))), 2)
        png = draw(img.permute(1, 2, 0).numpy()[:h, :w], gt, gi, args.scale)
        path = osp.join(args.out, osp.splitext(osp.basename(sample.img_path))[0] + '_gid.png')
        cv2.imwrite(path, png)
        n_t = int(gi.from_teacher.sum())
        print(f'{path}: {len(gt)} GT, {len(gi)} GIs ({n_t} teacher, {len(gi) - n_t} student)')
        out.append((path, gi))
    return out


if __name__ == '__main__':
    main()
