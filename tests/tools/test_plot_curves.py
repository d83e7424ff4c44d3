"""tools/plot_curves.py: parsing mmengine's scalars.json and writing the PNG."""
import json
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))

from plot_curves import read_scalars, smooth  # noqa: E402


def write_run(root, name, records):
    d = osp.join(root, name, '20260101_000000', 'vis_data')
    os.makedirs(d)
    with open(osp.join(d, 'scalars.json'), 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')
    return osp.join(root, name)


RECORDS = [
    {'lr': 0.1, 'loss': 3.0, 'loss_cls': 2.0, 'distill.x.loss_kd': 1.0, 'epoch': 1, 'iter': 50,
     'step': 50},
    {'lr': 0.1, 'loss': 2.0, 'loss_cls': 1.5, 'distill.x.loss_kd': 0.5, 'epoch': 1, 'iter': 100,
     'step': 100},
    {'coco/bbox_mAP': 0.25, 'coco/bbox_mAP_50': 0.4, 'data_time': 0.01, 'time': 0.1, 'step': 1},
]


def test_read_scalars_splits_train_and_val(tmp_path):
    train, val = read_scalars(write_run(str(tmp_path), 'a', RECORDS))
    assert train['loss'] == [(50, 3.0), (100, 2.0)]
    assert train['distill.x.loss_kd'] == [(50, 1.0), (100, 0.5)]
    assert 'lr' not in train
    # validation points sit at the last training iteration seen
    assert val['coco/bbox_mAP'] == [(100, 0.25)] and 'time' not in val


def test_smooth_is_a_trailing_mean():
    assert smooth([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_writes_a_png(tmp_path):
    a = write_run(str(tmp_path), 'a', RECORDS)
    b = write_run(str(tmp_path), 'b', RECORDS[:2])
    out = str(tmp_path / 'c.png')
    subprocess.run([sys.executable, osp.join(REPO, 'tools/plot_curves.py'), f'{a}=A', b,
                    '--out', out], check=True, capture_output=True)
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
