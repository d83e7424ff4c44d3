"""Write a plain student checkpoint (and config) beside every distillation checkpoint."""
from __future__ import annotations

import glob
import os
import os.path as osp
import re

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from densekd.registry import HOOKS
from densekd.utils.checkpoint import export_student_checkpoint
from densekd.utils.config import make_student_config

__all__ = ['StudentCheckpointHook']

# the names mmengine's CheckpointHook saves under; only their exports are cleaned up
_SAVED = re.compile(r'^(epoch_\d+|iter_\d+|best_.+)_student\.pth$')


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """After mmengine's ``CheckpointHook`` saves ``X.pth``, write ``X_student.pth``.

    ``X_student.pth`` holds only the student's weights under the plain student's key names
    and loads in mmdet/mmseg without densekd (``init_detector``/``init_model``, test tools,
    ``load_from``). ``student_config.py`` in the work dir is the matching plain config.
    Student files whose distillation checkpoint was removed (``max_keep_ckpts``) go too,
    also those exported before a resume (any ``epoch_N``/``iter_N``/``best_*`` export in the
    work dir without its ``.pth``).

    Runs at ``VERY_LOW`` priority, registered after the default hooks, so after the
    checkpoint hook at each point.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._exported: dict[str, float] = {}

    def before_train(self, runner) -> None:
        """Dump ``student_config.py`` into the work dir."""
        if is_main_process():
            make_student_config(runner.cfg).dump(osp.join(runner.work_dir, 'student_config.py'))

    def _export_new(self, runner) -> None:
        if not is_main_process():
            return
        info = runner.message_hub.runtime_info
        paths = {v for k, v in info.items() if (k == 'last_ckpt' or k.startswith('best_ckpt'))
                 and isinstance(v, str)}
        exported = False
        for path in sorted(paths):
            if not osp.isfile(path):
                continue
            mtime = osp.getmtime(path)
            if self._exported.get(path) == mtime:
                continue
            dst = export_student_checkpoint(path)
            self._exported[path] = mtime
            runner.logger.info(f'student checkpoint: {dst}')
            exported = True
        for path in [p for p in self._exported if not osp.isfile(p)]:
            del self._exported[path]
        if exported:  # the checkpoint hook removes old files when it saves a new one
            self._remove_orphans(runner.work_dir)

    @staticmethod
    def _remove_orphans(work_dir: str) -> None:
        for student in glob.glob(osp.join(glob.escape(work_dir), '*_student.pth')):
            name = osp.basename(student)
            if _SAVED.match(name) and not osp.isfile(student[:-len('_student.pth')] + '.pth'):
                os.remove(student)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        """Export after an iteration-based save."""
        self._export_new(runner)

    def after_train_epoch(self, runner) -> None:
        """Export after an epoch-based save."""
        self._export_new(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Export a new best checkpoint."""
        self._export_new(runner)
