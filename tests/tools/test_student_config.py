"""make_student_config: the student's config, as plain mmdet/mmseg train and test it, from
the config of a resumed, distributed or discriminator-training distillation run."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from densekd.utils.config import make_student_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FITNET = osp.join(REPO, 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py')
STUDENT = osp.join(REPO, 'configs/toy/retinanet_r18-w16_fpn_24e_toy.py')
MVG = osp.join(REPO, 'configs/cross_arch/cakd_pca-gl-mvg_s3_retinanet-swin-t32_retinanet-r18_'
               '24e_toy.py')


def run_config(path=FITNET):
    """The config as tools/train.py hands it to the Runner of a resumed 2-process run."""
    cfg = Config.fromfile(path)
    cfg.work_dir = '/runs/fitnet'
    cfg.resume = True
    cfg.load_from = '/runs/fitnet/epoch_3.pth'
    cfg.launcher = 'pytorch'
    # what densekd.utils.launch.setup_launcher sets for a distillation model on CPU
    cfg.model_wrapper_cfg = dict(type='DistillDistributedDataParallel', broadcast_buffers=False,
                                 find_unused_parameters=False, device_ids=None)
    cfg.custom_imports = dict(imports=['densekd.models', 'densekd', 'densekd_plugin'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='densekd.FiniteLossHook'),
                        dict(type='EMAHook', momentum=0.001)]
    return cfg


def test_runtime_of_a_resumed_distributed_run_is_reset():
    out = make_student_config(run_config())
    assert out.resume is False and out.load_from is None and out.launcher == 'none'
    assert 'work_dir' not in out  # a plain run must not write into the distillation's dir
    assert 'model_wrapper_cfg' not in out


def test_densekd_hooks_and_imports_dropped_others_kept():
    out = make_student_config(run_config())
    assert out.custom_hooks == [dict(type='EMAHook', momentum=0.001)]
    # 'densekd_plugin' is another package, not a densekd module
    assert out.custom_imports == dict(imports=['densekd_plugin'], allow_failed_imports=False)


def test_model_data_and_schedule_are_the_students():
    out = make_student_config(run_config())
    student = Config.fromfile(STUDENT)
    assert out.model == student.model
    assert out.default_scope == 'mmdet'
    assert out.train_dataloader.dataset.type == 'CocoDataset'
    assert out.optim_wrapper == student.optim_wrapper
    assert out.train_cfg == student.train_cfg


def test_a_plain_model_wrapper_is_kept():
    cfg = run_config()
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
    out = make_student_config(cfg)
    assert out.model_wrapper_cfg == dict(type='MMDistributedDataParallel',
                                         find_unused_parameters=True)


def test_discriminator_constructor_becomes_the_model_optimiser():
    cfg = run_config(MVG)
    out = make_student_config(cfg)
    assert out.optim_wrapper == dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
        clip_grad=dict(max_norm=35, norm_type=2))


def test_a_densekd_type_left_over_is_reported():
    cfg = run_config()
    cfg.test_evaluator = dict(type='densekd.SomeMetric')
    with pytest.warns(UserWarning, match=r'test_evaluator: densekd\.SomeMetric'):
        make_student_config(cfg)


def test_the_dumped_config_reads_back_unchanged(tmp_path):
    out = make_student_config(run_config())
    out.dump(str(tmp_path / 'student_config.py'))
    back = Config.fromfile(str(tmp_path / 'student_config.py'), import_custom_modules=False)
    assert back.resume is False and back.load_from is None and back.launcher == 'none'
    assert 'model_wrapper_cfg' not in back and 'work_dir' not in back
    # no densekd type or module left (the other package 'densekd_plugin' stays)
    assert not re.search(r"['\"]densekd[.'\"]", (tmp_path / 'student_config.py').read_text())
