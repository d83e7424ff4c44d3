"""tools/dist_train.sh with 2 CPU processes (torchrun, gloo): DDP over the whole
distillation model, without find_unused_parameters."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

import densekd  # noqa: F401  (safe-load allowlist for mmengine checkpoints)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL = osp.join(REPO, 'configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def scoring_teacher(path):
    """A randomly initialised toy RetinaNet teacher whose classifier bias is 0 (not mmdet's
    focal prior -4.6), so it returns boxes and the COCO metric has something to score."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from densekd.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs/toy/retinanet_r34-w32_fpn_24e_toy.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        teacher = MODELS.build(cfg.model)
    teacher.init_weights()
    torch.nn.init.zeros_(teacher.bbox_head.retina_cls.bias)
    torch.save({'state_dict': teacher.state_dict()}, path)
    return str(path)


def test_two_process_training(tmp_path, tiny_config):
    cfg = tiny_config(DISTILL, batch_size=2,
                      teacher_checkpoint=scoring_teacher(tmp_path / 'teacher.pth'))
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_train.sh'), str(cfg), '2',
                           '--work-dir', str(work)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # 16 images over 2 processes at batch 2: 4 iterations per process, logged by rank 0
    assert 'Epoch(train) [1][4/4]' in out
    assert 'distill.fpn_cwd.loss_cwd' in out
    assert 'teacher: teacher/coco/bbox_mAP' in out  # TeacherEvalHook under DDP
    assert 'Distributed launcher: pytorch' in out and 'Distributed training: True' in out
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])
    assert (work / 'epoch_1_student.pth').is_file()


MVG = osp.join(REPO, 'configs/cross_arch/cakd_pca-gl-mvg_s3_retinanet-swin-t32_retinanet-r18_'
               '24e_toy.py')


def test_two_process_training_with_a_discriminator_optimiser(tmp_path, tiny_config):
    # CAKD multi-view training: OptimWrapperDict (model + discriminator) under DDP, through
    # DistillDistributedDataParallel (mmengine's wrapper cannot take an OptimWrapperDict)
    cfg = tiny_config(MVG, num_train=8, num_val=4, batch_size=2,
                      extra='val_cfg = None\nval_dataloader = None\nval_evaluator = None\n'
                            'train_cfg = dict(max_epochs=1, val_interval=100)\n')
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/dist_train.sh'), str(cfg), '2',
                           '--work-dir', str(work)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'Epoch(train) [1][2/2]' in out
    assert 'distill.cakd.loss_discriminator' in out and 'distill.cakd.loss_gen' in out
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=True)
    assert set(ckpt['optimizer']) == {'model', 'discriminator'}
