"""An optimiser-wrapper constructor for distillation models with adversarial discriminators."""
from __future__ import annotations

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ['DiscriminatorOptimWrapperConstructor']


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DiscriminatorOptimWrapperConstructor:
    """Build ``OptimWrapperDict(model=..., discriminator=...)``.

    Every submodule attribute named ``discriminator`` (e.g.
    ``components.cakd.discriminator``) goes to the ``'discriminator'`` wrapper; all other
    trainable parameters to the ``'model'`` wrapper, which never holds a discriminator
    parameter. Each entry is an ordinary optimiser-wrapper config (``paramwise_cfg`` allowed)::

        optim_wrapper = dict(
            constructor='DiscriminatorOptimWrapperConstructor',
            model=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3)),
            discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4)))

    Registered in mmengine's root registry (un-prefixed name) so any default scope finds it.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('give paramwise_cfg inside optim_wrapper.model / .discriminator')
        missing = {'model', 'discriminator'} - set(optim_wrapper_cfg)
        if missing:
            raise ValueError(f'DiscriminatorOptimWrapperConstructor: missing {sorted(missing)}')
        self.cfgs = {k: dict(v) for k, v in optim_wrapper_cfg.items()}

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        """Split the parameters and build one wrapper per part."""
        model = getattr(model, 'module', model)
        discs = nn.ModuleList(m for n, m in model.named_modules()
                              if n.rsplit('.', 1)[-1] == 'discriminator')
        if not len(discs):
            raise ValueError('DiscriminatorOptimWrapperConstructor: the model has no module '
                             "named 'discriminator'")
        disc_ids = {id(p) for p in discs.parameters()}
        wrappers = {}
        for key, cfg in self.cfgs.items():
            paramwise = cfg.pop('paramwise_cfg', None)
            wrapper = DefaultOptimWrapperConstructor(cfg, paramwise)(
                discs if key == 'discriminator' else model)
            if key == 'model':  # drop the discriminator's parameters from the model optimiser
                groups = wrapper.optimizer.param_groups
                for group in groups:
                    group['params'] = [p for p in group['params'] if id(p) not in disc_ids]
                groups[:] = [g for g in groups if g['params']]
            wrappers[key] = wrapper
        return OptimWrapperDict(**wrappers)
