"""tools/test.py loads every checkpoint strictly into the model it evaluates: a mismatch
stops it (key report on stderr, exit code 1) instead of scoring random weights, a
distillation checkpoint works with the plain student config, --teacher cannot silently
evaluate other weights. Toy RetinaNets, a 4-image toy set."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDENT = osp.join(REPO, 'configs/toy/retinanet_r18-w16_fpn_24e_toy.py')
TEACHER = osp.join(REPO, 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py')
DISTILL = osp.join(REPO, 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py')
# mmengine's warning when its non-strict load_from skips keys
MMENGINE_MISMATCH = 'unexpected key in source state_dict'
# several Runners in one process share mmengine's named visualizer instance
pytestmark = pytest.mark.filterwarnings('ignore:.*instance named of visualizer has been created')


def load_tool():
    spec = importlib.util.spec_from_file_location('densekd_test_tool',
                                                  osp.join(REPO, 'tools/test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeded_state(config: str, seed: int) -> dict:
    """The state dict of ``config``'s model built after ``torch.manual_seed(seed)`` (the
    Runner builds with the config's seed 0: other random weights)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS

    import densekd  # noqa: F401

    model_cfg = Config.fromfile(config).model
    model_cfg['_scope_'] = 'mmdet'
    torch.manual_seed(seed)
    return MODELS.build(model_cfg).state_dict()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Toy data root, a plain student config, a distillation config and checkpoints."""
    tmp = tmp_path_factory.mktemp('test_tool')
    data = str(tmp / 'toy') + '/'
    dataset = f"""
        data_root = {data!r}
        test_dataloader = dict(batch_size=4, dataset=dict(
            data_root=data_root, toy_params=dict(num_train=2, num_val=4)))
        test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        """
    student = seeded_state(STUDENT, 1)
    teacher = seeded_state(TEACHER, 2)
    out = {'data': data, 'student_state': student, 'teacher_state': teacher}
    out['student_ckpt'] = str(tmp / 'epoch_1_student.pth')
    torch.save({'state_dict': student, 'meta': {}}, out['student_ckpt'])
    out['teacher_ckpt'] = str(tmp / 'teacher.pth')
    torch.save({'state_dict': teacher, 'meta': {}}, out['teacher_ckpt'])
    # what tools/train.py writes: student.* and the components' weights, no teacher.*
    out['distill_ckpt'] = str(tmp / 'epoch_1.pth')
    distill_state = {f'student.{k}': v for k, v in student.items()}
    distill_state['components.fpn_fitnet.projectors.0.weight'] = torch.ones(64, 64, 1, 1)
    torch.save({'state_dict': distill_state, 'meta': {'epoch': 1}}, out['distill_ckpt'])
    out['plain_cfg'] = str(tmp / 'student_config.py')
    with open(out['plain_cfg'], 'w') as f:
        f.write(f'_base_ = [{STUDENT!r}]\n' + textwrap.dedent(dataset))
    out['distill_cfg'] = str(tmp / 'distill.py')
    with open(out['distill_cfg'], 'w') as f:
        f.write(f'_base_ = [{DISTILL!r}]\n' + textwrap.dedent(dataset) + textwrap.dedent(f"""
            model = dict(teacher=dict(checkpoint={out['teacher_ckpt']!r}))
            """))
    return out


def run_tool(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, osp.join(REPO, 'tools/test.py'), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


class Captured:
    """Replaces Runner.test: records the runner instead of running the test loop."""

    def __init__(self, monkeypatch):
        from mmengine.runner import Runner

        self.runner = None
        captured = self

        def fake_test(runner):
            captured.runner = runner
            return {'fake/metric': 1.0}

        monkeypatch.setattr(Runner, 'test', fake_test)


def assert_state_equal(module, expected):
    state = module.state_dict()
    assert sorted(state) == sorted(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_mismatched_checkpoint_exits_1_with_the_key_report(files, tmp_path):
    # the teacher's weights (R34, 32 base channels) with the R18-w16 student's plain config:
    # mmengine's load_from warned, kept random weights and scored them (exit code 0)
    metrics = tmp_path / 'metrics.json'
    proc = run_tool(files['plain_cfg'], files['teacher_ckpt'], '--work-dir',
                    str(tmp_path / 'work'), '--out-metrics', str(metrics))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    err = proc.stderr
    assert (f"test: checkpoint {files['teacher_ckpt']!r} does not match the model:\n"
            in err), err[-3000:]
    # conv1 of ResNet: 7x7, 3 -> base_channels
    assert '  shape mismatch (' in err
    assert 'backbone.conv1.weight: checkpoint (32, 3, 7, 7) vs model (16, 3, 7, 7)' in err
    # ResNet-34's stage 1 has 3 blocks, ResNet-18's 2
    assert '  not in the model (' in err and 'backbone.layer1.2.conv1.weight' in err
    assert f"Check that the config {files['plain_cfg']!r} is the config" in err
    assert not metrics.exists()


def test_distillation_checkpoint_with_the_plain_student_config_end_to_end(files, tmp_path,
                                                                         capfd):
    metrics_file = tmp_path / 'metrics.json'
    # score_thr 0: untrained weights score low, and an empty result gives no metrics
    metrics = load_tool().main([
        files['plain_cfg'], files['distill_ckpt'], '--work-dir', str(tmp_path / 'work'),
        '--out-metrics', str(metrics_file), '--cfg-options', 'model.test_cfg.score_thr=0.0'])
    assert MMENGINE_MISMATCH not in ''.join(capfd.readouterr())  # mmengine loaded nothing
    with open(metrics_file) as f:
        assert json.load(f) == pytest.approx({k: float(v) for k, v in metrics.items()})
    assert sorted(metrics) == sorted(f'coco/bbox_mAP{s}' for s in
                                     ('', '_50', '_75', '_s', '_m', '_l'))


@pytest.mark.parametrize('config,checkpoint,distill_model', [
    ('plain_cfg', 'distill_ckpt', False),    # student.* taken from the distillation file
    ('plain_cfg', 'student_ckpt', False),
    ('distill_cfg', 'distill_ckpt', True),   # the DistillationModel's student
    ('distill_cfg', 'student_ckpt', False),  # evaluated with the plain student config
])
def test_the_evaluated_model_holds_the_checkpoint_weights(files, tmp_path, monkeypatch,
                                                          config, checkpoint, distill_model):
    from densekd.models import DistillationModel

    captured = Captured(monkeypatch)
    tool = load_tool()
    metrics = tool.main([files[config], files[checkpoint], '--work-dir', str(tmp_path)])
    assert metrics == {'fake/metric': 1.0}
    runner = captured.runner
    assert runner.cfg.load_from is None and not runner.cfg.resume  # nothing loads twice
    model = runner.model
    assert isinstance(model, DistillationModel) == distill_model
    if distill_model:
        assert model.predict_with == 'student'
        model = model.student
    assert_state_equal(model, files['student_state'])


def test_teacher_is_evaluated_with_its_checkpoint(files, tmp_path, monkeypatch):
    captured = Captured(monkeypatch)
    load_tool().main([files['distill_cfg'], '--teacher', '--work-dir', str(tmp_path)])
    model = captured.runner.model
    assert model.predict_with == 'teacher'
    assert_state_equal(model.teacher, files['teacher_state'])


def test_teacher_refuses_a_checkpoint_argument(files, tmp_path, monkeypatch):
    captured = Captured(monkeypatch)
    with pytest.raises(SystemExit) as err:
        load_tool().main([files['distill_cfg'], files['student_ckpt'], '--teacher',
                          '--work-dir', str(tmp_path)])
    msg = str(err.value)
    assert 'would be ignored' in msg
    assert f"--cfg-options model.teacher.checkpoint={files['student_ckpt']}" in msg
    assert captured.runner is None


def test_teacher_refuses_a_config_without_teacher_checkpoint(files, tmp_path, monkeypatch):
    captured = Captured(monkeypatch)
    with pytest.raises(SystemExit) as err:
        load_tool().main([files['distill_cfg'], '--teacher', '--work-dir', str(tmp_path),
                          '--cfg-options', 'model.teacher.checkpoint=None'])
    msg = str(err.value)
    assert 'sets no `model.teacher.checkpoint`' in msg and 'random weights' in msg
    assert captured.runner is None


@pytest.mark.parametrize('config', ['plain_cfg', 'distill_cfg'])
def test_missing_checkpoint_names_the_argument(files, tmp_path, monkeypatch, config):
    captured = Captured(monkeypatch)
    missing = str(tmp_path / 'epoch_9.pth')
    with pytest.raises(SystemExit) as err:
        load_tool().main([files[config], missing, '--work-dir', str(tmp_path)])
    msg = str(err.value)
    assert f'{missing!r} does not exist' in msg
    assert 'Check the CHECKPOINT argument of tools/test.py' in msg
    assert captured.runner is None
