"""tools/draw_gid.py on the toy GID config (random teacher and student, a tiny toy set)."""
import importlib.util
import os.path as osp
import warnings

import cv2
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GID_TOY = osp.join(REPO, 'configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('draw_gid', osp.join(REPO, 'tools/draw_gid.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_draw_gid_two_images(tiny_config, tmp_path):
    config = tiny_config(GID_TOY, num_train=4, num_val=4)     # teacher.checkpoint=None
    out = tmp_path / 'vis'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                        # the teacher has no checkpoint
        drawn = load_tool().main([config, '--images', '2', '--out', str(out)])
    assert sorted(osp.basename(p) for p, _ in drawn) == ['000001_gid.png', '000002_gid.png']
    assert sorted(p.name for p in out.iterdir()) == ['000001_gid.png', '000002_gid.png']
    for path, gis in drawn:
        assert cv2.imread(path).shape == (4 * 128, 4 * 128, 3)
        assert 1 <= len(gis) <= 10                              # K = num_instances of the config
        assert gis.bboxes.shape == (len(gis), 4) and gis.from_teacher.dtype == torch.bool
