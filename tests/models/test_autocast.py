"""Mixed precision: a distillation step of every method under bf16 autocast.

``tools/train.py --amp`` runs the forward of the whole step (teacher, student, components)
under ``torch.autocast``. The CPU stand-in is bf16 autocast on the CPU: the models' convs and
matmuls then produce bf16 maps, and the components must take them in that dtype and compute
their losses in float32 (``DistillationModel.loss`` casts the tap levels and turns autocast
off around the components). One config per method family, random teacher, one batch of two
128 px images; each step is compared with the float32 step on the same batch and seed.

Tolerance: bf16 keeps 8 significant bits (relative rounding 2**-9 ~ 0.2 % per op); through
the ~20 layers of the toy models the maps differ from float32 by a few per cent, and
losses that select by score (GID's instances, DETRDistill's Hungarian matching and top-k)
can pick a different neighbour. Each distillation loss must be within 15 % (relative, with
an absolute floor of 1e-3 for losses near zero) of its float32 value: far tighter than the
errors a dtype bug gives (a wrong cast or a loss computed in bf16 shifts values, a dropped
term changes them wholly), loose enough for bf16's rounding.
"""
from __future__ import annotations

import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from densekd.models.components.gid import GeneralInstanceDistill
from densekd.models.distillers.distillation_model import init_weights_offline
from densekd.registry import MODELS
from densekd.utils.benchmark import make_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIGS = {
    'fitnet': 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'cwd': 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'cwd_seg': 'configs/cwd/cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py',
    'mgd': 'configs/mgd/mgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'fgd': 'configs/fgd/fgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'pkd': 'configs/pkd/pkd_fpn_retinanet-r34_retinanet-r18_24e_toy.py',
    'pixel_kd': 'configs/pixel_kd/pixel-kd_logits_pspnet-r34_pspnet-r18_1k_toy.py',
    'gid': 'configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py',
    'gid_rpn': 'configs/gid/gid_rpn_faster-rcnn-r34_faster-rcnn-r18_24e_toy.py',
    'lad': 'configs/lad/lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py',
    'detr_deformable': 'configs/detr_distill/'
                       'detr-distill_deformable-detr-r34_deformable-detr-r18_50e_toy.py',
    'detr_dino': 'configs/detr_distill/detr-distill_dino-r34_dino-r18_24e_toy.py',
    'detr_conditional': 'configs/detr_distill/'
                        'detr-distill_conditional-detr-r34_conditional-detr-r18_50e_toy.py',
    'cakd': 'configs/cross_arch/cakd_pca-gl_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py',
    'cakd_mvg': 'configs/cross_arch/'
                'cakd_pca-gl-mvg_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py',
    'scalekd': 'configs/cross_arch/scalekd_s3-s4_retinanet-swin-t32_retinanet-r18_24e_toy.py',
}
RTOL, ATOL = 0.15, 1e-3


@pytest.fixture(autouse=True)
def cuda_like_cpu_kernels(monkeypatch):
    """mmcv's CPU NMS and RoIAlign kernels take float32 only, their CUDA kernels fp16 too
    (NMS reads the scores only to sort them). A two-stage student hands them
    autocast-dtype tensors: mmdet's own Faster R-CNN fails a CPU bf16 step with or without
    distillation. Here the CPU kernels get float32 copies and RoIAlign returns the input's
    dtype, as the CUDA kernels do; RoIAlign still refuses features and RoIs of different
    dtypes, as the CUDA kernel does (mmdet's extractor casts the RoIs to the features')."""
    import importlib

    from mmcv.ops import RoIAlign
    ext = importlib.import_module('mmcv.ops.nms').ext_module
    plain_nms, plain_roi_align = ext.nms, RoIAlign.forward

    def nms(boxes, scores, *args, **kwargs):
        return plain_nms(boxes.float(), scores.float(), *args, **kwargs)

    def roi_align(self, features, rois):
        if features.dtype != rois.dtype:
            raise RuntimeError(f'RoIAlign: features {features.dtype}, rois {rois.dtype}')
        return plain_roi_align(self, features.float(), rois.float()).to(features.dtype)

    monkeypatch.setattr(ext, 'nms', nms)
    monkeypatch.setattr(RoIAlign, 'forward', roi_align)


def _build(path: str, query_two_pass: bool = False):
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.model.teacher.checkpoint = None
    if query_two_pass:
        for comp in cfg.model.components:
            if comp['type'] == 'densekd.DETRQueryPriorDistill':
                comp['one_pass'] = False
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
        init_weights_offline(model)
    return model.train()


def _step(model, data: dict, bf16: bool) -> dict[str, torch.Tensor]:
    """The step's losses (seeded: MGD's masks and dropout draw alike) after a backward."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    total.backward()
    return losses


@pytest.mark.parametrize('name,path,two_pass', [
    *((name, path, False) for name, path in CONFIGS.items()),
    ('detr_deformable_two_pass', CONFIGS['detr_deformable'], True),
])
def test_bf16_autocast_step(name: str, path: str, two_pass: bool) -> None:
    model = _build(path, query_two_pass=two_pass)
    torch.manual_seed(0)
    data = model.data_preprocessor(make_batch(model, 2, 128), True)
    # GID's instances are chosen by score among near-ties of a random teacher: the bf16
    # step gets the float32 step's instances, so the losses compare one selection
    selections = []
    gid = [c for c in model.components.values() if isinstance(c, GeneralInstanceDistill)]
    for comp in gid:
        select = comp._select
        comp._select = lambda *a, _s=select, **k: selections.append(_s(*a, **k)) \
            or selections[-1]
    ref = {k: v.detach() for k, v in _step(model, data, bf16=False).items()
           if k.startswith('distill.')}
    for comp in gid:
        comp._select = lambda *a, **k: selections.pop(0)
    losses = _step(model, data, bf16=True)
    assert not selections
    distill = {k: v for k, v in losses.items() if k.startswith('distill.')}
    assert distill.keys() == ref.keys() and distill, name
    for key, value in distill.items():
        assert value.dtype == torch.float32, f'{key} computed in {value.dtype}'
        assert torch.isfinite(value), f'{key} = {value}'
        assert torch.allclose(value.detach(), ref[key], rtol=RTOL, atol=ATOL), \
            f'{key}: bf16 {value.item():.6g} vs float32 {ref[key].item():.6g}'
    for key, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        assert all(torch.isfinite(v).all() for v in values), key
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.teacher.parameters())
