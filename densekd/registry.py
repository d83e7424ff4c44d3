"""densekd registries, children of the mmengine roots.

Every densekd class is registered here and is reachable from any config as
``type='densekd.<Name>'``; the ``locations`` make the registries import the modules
that fill them on first use, so no ``register_all_modules`` call is needed.

* ``MODELS``: nn.Modules -- the distillation model, components, losses, projectors.
* ``TASK_UTILS``: non-module helpers -- taps, matchers, instance selectors.
* ``HOOKS``: runner hooks (loss-weight schedule, student checkpoint export).
* ``DATASETS``: the toy datasets.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='densekd', locations=['densekd.models'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, scope='densekd', locations=['densekd.models'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='densekd', locations=['densekd.hooks'])
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope='densekd', locations=['densekd.datasets'])

__all__ = ['MODELS', 'TASK_UTILS', 'HOOKS', 'DATASETS']
