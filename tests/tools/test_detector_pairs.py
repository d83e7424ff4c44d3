"""The toy detector pairs beyond RetinaNet (FCOS, GFL, Faster R-CNN, and a Faster R-CNN
teacher -> RetinaNet student) distil through their configs: one loss step gives the
student's own losses and the distillation loss, and the teacher stops at its neck."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from densekd.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# config, the student's loss keys, the distillation loss key, the teacher's head modules
PAIRS = [
    ('configs/fgd/fgd_fpn_fcos-r34_fcos-r18_24e_toy.py',
     ('loss_cls', 'loss_bbox', 'loss_centerness'), 'distill.fpn_fgd.loss_fgd', ('bbox_head',)),
    ('configs/fgd/fgd_fpn_gfl-r34_gfl-r18_24e_toy.py',
     ('loss_cls', 'loss_bbox', 'loss_dfl'), 'distill.fpn_fgd.loss_fgd', ('bbox_head',)),
    ('configs/fgd/fgd_fpn_faster-rcnn-r34_faster-rcnn-r18_24e_toy.py',
     ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'), 'distill.fpn_fgd.loss_fgd',
     ('rpn_head', 'roi_head')),
    ('configs/pkd/pkd_fpn_faster-rcnn-r34_retinanet-r18_24e_toy.py',
     ('loss_cls', 'loss_bbox'), 'distill.fpn_pkd.loss_pkd', ('rpn_head', 'roi_head')),
]


def build(path):
    cfg = Config.fromfile(osp.join(REPO, path))
    cfg.model.teacher.checkpoint = None
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.warns(UserWarning, match='no checkpoint'):
        return MODELS.build(cfg.model)


def count_head_calls(teacher, heads):
    """Count calls of every module inside the teacher's heads. The detectors call
    ``head.forward(...)`` directly, which skips hooks on the head itself; its layers are
    called normally."""
    calls = []
    for name in heads:
        for module in getattr(teacher, name).modules():
            module.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def total(value) -> float:
    """A loss entry (a tensor or a list of per-level tensors) as a number."""
    if isinstance(value, (list, tuple)):
        return float(sum(v.detach() for v in value))
    return float(value.detach())


@pytest.mark.parametrize('path,student_keys,distill_key,heads', PAIRS,
                         ids=[osp.basename(p[0]) for p in PAIRS])
def test_pair_distils_and_teacher_stops_at_its_neck(path, student_keys, distill_key, heads,
                                                    det_batch):
    model = build(path)
    head_calls = count_head_calls(model.teacher, heads)
    neck_calls = []
    model.teacher.neck.register_forward_pre_hook(lambda *args: neck_calls.append(1))
    data = model.data_preprocessor(det_batch(), True)

    losses = model.loss(**data)
    for key in student_keys + (distill_key,):
        assert key in losses, (key, sorted(losses))
        assert math.isfinite(total(losses[key])), (key, losses[key])
    assert total(losses[distill_key]) > 0
    assert neck_calls == [1]
    assert head_calls == []

    # the counter does see the head when the teacher runs to the end
    model.teacher_early_exit = False
    with torch.no_grad():
        model.loss(**data)
    assert len(head_calls) > 0
