"""densekd registries, children of the mmengine roots.

Every densekd class is registered here and is reachable from any config as
``type='densekd.<Name>'``; the ``locations`` make the registries import the modules
that fill them on first use, so no ``register_all_modules`` call is needed.

* ``MODELS``: nn.Modules -- the distillation model, components, losses, projectors.
* ``TASK_UTILS``: non-module helpers -- taps, matchers, instance selectors.
* ``HOOKS``: runner hooks (loss-weight schedule, student checkpoint export, the stop at
  a non-finite loss).
* ``DATASETS``: the toy datasets.

:func:`unregistered_type_hint` words the error for a ``type`` no registry knows, with
the registered names spelled closest (``densekd.FeatureMimik`` -> ``densekd.FeatureMimic``).
"""
from __future__ import annotations

import difflib
from typing import Any

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

__all__ = ['MODELS', 'TASK_UTILS', 'HOOKS', 'DATASETS', 'close_registered_names',
           'unregistered_type_hint']


def close_registered_names(registry: Registry, key: str, n: int = 3) -> list[str]:
    """Names registered in ``registry``'s own scope spelled like ``key`` (case-insensitive
    ``difflib`` matches), each as ``'<scope>.<Name>'``, closest first.

    Args:
        registry: a densekd registry, e.g. :data:`MODELS`.
        key: the type as written in a config, with or without its scope.
        n: at most this many names.
    """
    registry.import_from_location()
    _, name = Registry.split_scope_key(key)
    by_lower = {k.lower(): k for k in registry.module_dict}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    return [f'{registry.scope}.{by_lower[m]}' for m in matches]


def unregistered_type_hint(registry: Registry, key: Any) -> str | None:
    """A message for a config ``type`` that ``registry`` cannot find, with close matches;
    None when ``key`` is not a string or is registered (the error is then another one).

    Args:
        registry: the registry the type was built from.
        key: the config's ``type``.
    """
    if not isinstance(key, str):
        return None
    try:
        if registry.get(key) is not None:
            return None
    except (KeyError, RuntimeError):  # mmengine raises for some unknown scoped names
        pass
    close = close_registered_names(registry, key)
    hint = f'; did you mean {" or ".join(repr(c) for c in close)}?' if close else \
        f'; registered {registry.scope} types: {sorted(registry.module_dict)}'
    return (f'type {key!r} is not registered in {registry.scope}::{registry.name}{hint} '
            "(a type defined outside densekd needs its module in custom_imports)")
