"""DDP wrapper for distillation models whose components train a discriminator."""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS
from torch import Tensor

__all__ = ['DistillDistributedDataParallel']


@MODEL_WRAPPERS.register_module()
class DistillDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` that also takes the ``OptimWrapperDict`` of
    :class:`~densekd.models.DistillationModel` (``'model'`` + ``'discriminator'``, e.g. CAKD
    multi-view training).

    mmengine's wrapper runs ``optim_wrapper.optim_context`` and ``update_params`` itself,
    which an ``OptimWrapperDict`` does not support. Here the forward goes through DDP under
    the ``'model'`` wrapper's context, and the wrapped model's
    :meth:`~densekd.models.DistillationModel.update_from_losses` does one backward for both
    loss sets (DDP averages every gradient, the discriminator's included) and steps both
    wrappers. A plain ``OptimWrapper`` takes mmengine's path unchanged.
    ``tools/train.py`` (:func:`densekd.utils.launch.setup_launcher`) selects this wrapper for
    distillation models under a distributed launcher unless the config sets
    ``model_wrapper_cfg``. Registered in mmengine's root registry (un-prefixed name).
    """

    def train_step(self, data: dict | tuple | list,
                   optim_wrapper: OptimWrapper | OptimWrapperDict) -> dict[str, Tensor]:
        """One DDP optimisation step (see the class doc)."""
        if not isinstance(optim_wrapper, OptimWrapperDict):
            return super().train_step(data, optim_wrapper)
        with optim_wrapper['model'].optim_context(self):
            data = self.module.data_preprocessor(data, training=True)
            losses = self._run_forward(data, mode='loss')
        return self.module.update_from_losses(losses, optim_wrapper, distributed=True)
