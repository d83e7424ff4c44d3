"""End to end through tools/train.py on a tiny toy set: the student checkpoint exported
beside the distillation checkpoint loads in plain mmdet with identical predictions; a
resumed run continues with the losses of an uninterrupted one; the student config of a
distributed and of a resumed run trains and tests in plain mmdet (densekd not imported); the
toy runtime keeps the last two epochs' checkpoints; a truncated last checkpoint is reported
with the previous one."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL = osp.join(REPO, 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py')


NO_FLIP = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs')]
TWO_EPOCHS = """
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
log_processor = dict(window_size=1)
"""


def train(config, work_dir, *extra):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, osp.join(REPO, 'tools/train.py'), config, '--work-dir', work_dir,
           *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def losses_by_step(work_dir):
    out = {}
    for path in sorted(glob_scalars(work_dir)):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec:
                    out[rec['step']] = rec
    return out


def glob_scalars(work_dir):
    import glob

    return glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmengine.config import Config
    from mmengine.registry import MODELS

    import densekd  # noqa: F401

    tmp = tmp_path_factory.mktemp('teacher')
    cfg = Config.fromfile(osp.join(REPO, 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py'))
    cfg.model['_scope_'] = 'mmdet'
    torch.manual_seed(0)
    path = str(tmp / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return path


def test_resume_continues_with_identical_losses(tmp_path, teacher_ckpt, tiny_config):
    # no random flip: the resumed run's data are then identical to the uninterrupted one's
    cfg = tiny_config(DISTILL, teacher_checkpoint=teacher_ckpt, train_pipeline=NO_FLIP,
                      extra=TWO_EPOCHS)
    full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
    train(cfg, full)
    train(cfg, part, '--cfg-options', 'train_cfg.max_epochs=1')
    assert osp.isfile(osp.join(part, 'epoch_1.pth'))
    per_epoch = max(losses_by_step(part))
    train(cfg, part, '--resume')
    a, b = losses_by_step(full), losses_by_step(part)
    second_epoch = [s for s in sorted(a) if s > per_epoch]
    assert second_epoch == list(range(per_epoch + 1, 2 * per_epoch + 1))
    for step in second_epoch:
        for key in ('loss', 'loss_cls', 'distill.fpn_fitnet.loss_l2'):
            assert b[step][key] == pytest.approx(a[step][key], rel=1e-5, abs=1e-7), (step, key)


def test_exported_student_loads_in_plain_mmdet_with_identical_predictions(
        tmp_path, teacher_ckpt, tiny_config):
    cfg = tiny_config(DISTILL, teacher_checkpoint=teacher_ckpt)
    work = str(tmp_path / 'work')
    train(cfg, work)
    ckpt, student = osp.join(work, 'epoch_1.pth'), osp.join(work, 'epoch_1_student.pth')
    student_cfg = osp.join(work, 'student_config.py')
    assert osp.isfile(student) and osp.isfile(student_cfg)

    script = textwrap.dedent(f"""
        import sys, torch
        from mmdet.apis import init_detector
        from mmdet.testing import demo_mm_inputs
        torch.manual_seed(0)
        model = init_detector({student_cfg!r}, {{ckpt!r}}, device='cpu')
        model.bbox_head.test_cfg.score_thr = 0.0  # an untrained student scores low
        data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_classes=5)
        with torch.no_grad():
            out = model.test_step(data)
        assert 'densekd' not in sys.modules or {{allow_densekd}}
        torch.save([(o.pred_instances.bboxes, o.pred_instances.scores) for o in out],
                   {{out!r}})
        """)
    plain = script.format(ckpt=student, allow_densekd=False, out=str(tmp_path / 'plain.pt'))
    proc = subprocess.run([sys.executable, '-c', plain], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    distilled = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {REPO!r})
        import densekd
        from mmengine.config import Config
        from mmengine.registry import DefaultScope, MODELS
        from mmdet.testing import demo_mm_inputs
        from densekd.utils.checkpoint import load_checkpoint_file
        cfg = Config.fromfile({cfg!r})
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MODELS.build(cfg.model)
        model.load_state_dict(load_checkpoint_file({ckpt!r})['state_dict'], strict=True)
        model.student.bbox_head.test_cfg.score_thr = 0.0
        model.eval()
        data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_classes=5)
        with torch.no_grad():
            out = model.test_step(data)
        torch.save([(o.pred_instances.bboxes, o.pred_instances.scores) for o in out],
                   {str(tmp_path / 'distilled.pt')!r})
        """)
    proc = subprocess.run([sys.executable, '-c', distilled], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain_out = torch.load(tmp_path / 'plain.pt')
    distilled_out = torch.load(tmp_path / 'distilled.pt')
    assert len(plain_out[0][0]) > 0
    for (b1, s1), (b2, s2) in zip(plain_out, distilled_out):
        assert torch.equal(b1, b2) and torch.equal(s1, s2)


def run(cmd, **kw):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.update(kw.pop('env', {}))
    return subprocess.run(cmd, cwd=kw.pop('cwd', REPO), env=env, capture_output=True, text=True,
                          timeout=600, **kw)


PLAIN_TRAIN_AND_TEST = """
import json, sys
import torch
from mmengine.config import Config
from mmengine.runner import Runner
configs, ckpt, work = json.loads(sys.argv[1])
expected = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
out = {}
for name, path in configs.items():
    cfg = Config.fromfile(path)
    for key in ('train_dataloader', 'test_dataloader'):
        cfg[key].batch_size = 2
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
        cfg[key].dataset.indices = 2  # two images
    # test the exported student, as mmdet's tools/test.py does (load_from = the checkpoint)
    cfg.work_dir, cfg.load_from = f'{work}/{name}_test', ckpt
    cfg.model.test_cfg.score_thr = 0.0  # an untrained student scores low; keep its boxes
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    state = runner.model.state_dict()
    assert set(state) == set(expected), set(state) ^ set(expected)
    assert all(torch.equal(state[k], expected[k]) for k in state)
    out[name] = dict(metrics=sorted(metrics), launcher=cfg.get('launcher'))
# and train the student from there with the distributed run's config: one iteration, one
# checkpoint
cfg.work_dir = f'{work}/train'
cfg.train_cfg.max_epochs = 1
cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
Runner.from_cfg(cfg).train()
assert 'densekd' not in sys.modules, sorted(m for m in sys.modules if 'densekd' in m)
print('RESULT', json.dumps(out))
"""


def test_distributed_then_resumed_run_keeps_two_checkpoints_and_a_plain_student_config(
        tmp_path, teacher_ckpt, tiny_config):
    # 8 images, batch 2: 2 iterations per epoch over 2 processes, 4 in one; validation last
    cfg = tiny_config(DISTILL, num_train=8, num_val=4, batch_size=2,
                      teacher_checkpoint=teacher_ckpt,
                      extra='train_cfg = dict(max_epochs=3, val_interval=3)\n'
                            "custom_hooks = [dict(type='densekd.StudentCheckpointHook')]\n")
    work = tmp_path / 'work'
    # epoch 1 with 2 gloo processes, as tools/dist_train.sh runs on a machine without GPUs
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = run(['bash', osp.join(REPO, 'tools/dist_train.sh'), cfg, '2', '--work-dir',
                str(work), '--resume', 'auto', '--cfg-options', 'train_cfg.max_epochs=1'],
               env=dict(PYTHON=sys.executable, PORT=str(port)))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert f'--resume auto: no checkpoint in {work}, starting from the beginning' in out
    assert 'Distributed training: True' in out
    dist_student_cfg = str(tmp_path / 'dist_student_config.py')
    os.replace(work / 'student_config.py', dist_student_cfg)

    # epochs 2-3 resumed in one process
    proc = run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg, '--work-dir', str(work),
                '--resume', 'auto'])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert f'--resume auto: resuming from {work}/epoch_1.pth' in out
    assert 'Epoch(train) [3][4/4]' in out
    # a checkpoint per epoch, the last two kept, with their student exports (epoch 1's,
    # written before the resume, removed with its checkpoint)
    assert sorted(p.name for p in work.glob('*.pth')) == [
        'epoch_2.pth', 'epoch_2_student.pth', 'epoch_3.pth', 'epoch_3_student.pth']

    # a truncated last checkpoint: the error names the previous one as the way back
    broken = tmp_path / 'broken'
    broken.mkdir()
    data = (work / 'epoch_3.pth').read_bytes()
    (broken / 'epoch_3.pth').write_bytes(data[:len(data) // 2])
    (broken / 'epoch_2.pth').write_bytes((work / 'epoch_2.pth').read_bytes())
    (broken / 'last_checkpoint').write_text(str(broken / 'epoch_3.pth'))
    proc = run([sys.executable, osp.join(REPO, 'tools/train.py'), cfg, '--work-dir',
                str(broken), '--resume'])
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-4000:]
    assert f'error: {broken}/epoch_3.pth is not a readable checkpoint (truncated?)' \
        in proc.stderr
    assert proc.stderr.strip().endswith(
        f'Resume from the previous one with --resume {broken}/epoch_2.pth')

    # the student configs, in plain mmdet without densekd: test the exported student
    # (weights as exported) on 2 images, then train it an iteration
    configs = {'resumed': str(work / 'student_config.py'), 'dist': dist_student_cfg}
    proc = run([sys.executable, '-c', PLAIN_TRAIN_AND_TEST,
                json.dumps([configs, str(work / 'epoch_3_student.pth'), str(tmp_path)])],
               cwd=str(tmp_path), env=dict(PYTHONPATH=''))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads(proc.stdout.split('RESULT ', 1)[1])
    for name in configs:
        assert 'coco/bbox_mAP' in result[name]['metrics']
        assert result[name]['launcher'] == 'none'
    assert (tmp_path / 'train' / 'epoch_1.pth').is_file()
    for path in configs.values():
        plain = Config.fromfile(path)
        assert plain.resume is False and plain.load_from is None
        assert 'model_wrapper_cfg' not in plain and 'work_dir' not in plain
