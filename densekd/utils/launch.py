"""Launch helpers shared by tools/train.py and tools/test.py."""
from __future__ import annotations

import os

import torch
from mmengine.config import Config

from .config import is_distillation_config

__all__ = ['setup_launcher', 'teardown_launcher']


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Record the launcher on ``cfg``; make ``pytorch`` launches work on CPU-only machines.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps the model
    with ``device_ids=[LOCAL_RANK]``; neither works without a GPU. Without CUDA this
    initialises the process group with gloo itself (mmengine then skips its own
    ``init_dist``) and wraps the model with ``device_ids=None``. A ``DistillationModel``
    is wrapped in :class:`~densekd.models.DistillDistributedDataParallel` (which also takes
    a discriminator's ``OptimWrapperDict``) unless the config sets ``model_wrapper_cfg``.
    """
    cfg.launcher = launcher
    if launcher == 'none':
        return
    if is_distillation_config(cfg) and cfg.get('model_wrapper_cfg') is None:
        # takes the discriminator's OptimWrapperDict too; a plain OptimWrapper as mmengine's
        cfg.model_wrapper_cfg = dict(type='DistillDistributedDataParallel',
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters',
                                                                    False))
    if torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'launcher {launcher!r} needs CUDA; on CPU use --launcher pytorch '
                           '(tools/dist_train.sh)')
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                   broadcast_buffers=False)
    cfg.model_wrapper_cfg = dict(wrapper, device_ids=None)


def teardown_launcher() -> None:
    """Wait for every process, then destroy the process group (if any).

    Exiting with a live gloo group can abort a process in its C++ teardown ("terminate called
    without an active exception", exit code -6) after the work is done, failing the launch.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
