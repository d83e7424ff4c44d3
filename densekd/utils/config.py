"""Resolving and building the student's and teacher's models from their own configs.

A model spec is what a user writes for ``student=`` or ``teacher=`` in a distillation
config::

    dict(config='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', checkpoint='r50.pth')
    dict(config='configs/_base_/models/toy_retinanet_r18.py')
    dict(model=dict(type='RetinaNet', ...), scope='mmdet')

``config`` is an installed package's config (``pkg::relative/path.py``, no network) or a
local file, used unchanged; only its ``model`` (and ``default_scope``) are read.
"""
from __future__ import annotations

import copy
import os.path as osp
import warnings
from typing import Any

from mmengine.config import Config, ConfigDict
from mmengine.utils import get_installed_path

__all__ = ['resolve_config_path', 'load_model_spec', 'ModelSpec', 'make_student_config',
           'is_distillation_config']


def resolve_config_path(path: str) -> str:
    """Turn ``pkg::rel/path.py`` or a local path into an existing file path.

    Args:
        path: ``mmdet::retinanet/retinanet_r50_fpn_1x_coco.py``-style package path or a
            path on disk.

    Returns:
        The absolute path of the config file.

    Raises:
        FileNotFoundError: naming the places that were searched.
    """
    if '::' in path:
        package, rel = path.split('::', 1)
        try:
            root = get_installed_path(package)
        except Exception as err:  # importlib raises several kinds
            raise FileNotFoundError(
                f'config {path!r}: package {package!r} is not installed') from err
        candidates = [osp.join(root, '.mim', 'configs', rel), osp.join(root, 'configs', rel),
                      osp.join(osp.dirname(root), 'configs', rel)]
    else:
        candidates = [path]
    for cand in candidates:
        if osp.isfile(cand):
            return osp.abspath(cand)
    raise FileNotFoundError(f'config {path!r} not found; looked in: {candidates}')


class ModelSpec:
    """The parsed form of a ``student=``/``teacher=`` entry.

    Attributes:
        model: the model config dict, with ``_scope_`` set so it builds from any scope.
        scope: the registry scope the model belongs to (``mmdet``, ``mmseg``...).
        checkpoint: optional checkpoint path or URL.
    """

    def __init__(self, model: ConfigDict, scope: str | None, checkpoint: str | None) -> None:
        self.model = model
        self.scope = scope
        self.checkpoint = checkpoint

    def data_preprocessor(self) -> dict | None:
        """The model's own data preprocessor config, scoped, or None."""
        pre = self.model.get('data_preprocessor')
        if pre is None:
            return None
        pre = copy.deepcopy(pre)
        if self.scope is not None:
            pre.setdefault('_scope_', self.scope)
        return pre


def load_model_spec(spec: dict[str, Any] | str, role: str) -> ModelSpec:
    """Parse a student/teacher entry.

    Args:
        spec: a dict with ``config`` (file or ``pkg::path``) or ``model`` (inline dict),
            optional ``checkpoint`` and ``scope``; a bare string is taken as ``config``.
        role: ``'student'`` or ``'teacher'``, used in error messages.

    Returns:
        The parsed :class:`ModelSpec`.
    """
    if isinstance(spec, str):
        spec = dict(config=spec)
    spec = dict(spec)
    unknown = set(spec) - {'config', 'model', 'checkpoint', 'scope'}
    if unknown:
        raise KeyError(f'{role}: unknown keys {sorted(unknown)}; expected config or model, '
                       'and optionally checkpoint and scope')
    if ('config' in spec) == ('model' in spec):
        raise ValueError(f'{role}: give exactly one of `config` (a config file) or `model` '
                         '(an inline model dict)')
    if 'config' in spec:
        full_cfg = Config.fromfile(resolve_config_path(spec['config']))
        if 'model' not in full_cfg:
            raise KeyError(f'{role}: config {spec["config"]!r} has no `model`')
        model = copy.deepcopy(full_cfg.model)
        scope = spec.get('scope') or full_cfg.get('default_scope')
    else:
        model = copy.deepcopy(spec['model'])
        scope = spec.get('scope')
    if not isinstance(model, ConfigDict):
        model = ConfigDict(model)
    model_type = model.get('type')
    if scope is None and isinstance(model_type, str) and '.' in model_type:
        scope = model_type.split('.', 1)[0]
    if scope is not None:
        model.setdefault('_scope_', scope)
    return ModelSpec(model, scope, spec.get('checkpoint'))


def _deploy_types(node: Any) -> Any:
    """Replace densekd dataset types by the plain config each declares as ``deploy_cfg``."""
    if isinstance(node, dict):
        node = {k: _deploy_types(v) for k, v in node.items()}
        node_type = node.get('type')
        if isinstance(node_type, str) and node_type.startswith('densekd.'):
            from densekd.registry import DATASETS

            deploy = getattr(DATASETS.get(node_type), 'deploy_cfg', None)
            if deploy is not None:
                node.pop('toy_params', None)
                node.update(copy.deepcopy(deploy))
        return node
    if isinstance(node, (list, tuple)):
        return type(node)(_deploy_types(v) for v in node)
    return node


def is_distillation_config(cfg: Config) -> bool:
    """Whether ``cfg.model`` is a densekd distillation model."""
    return str(cfg.get('model', {}).get('type', '')).endswith('DistillationModel')


def _is_densekd_type(name: Any, registry_name: str) -> bool:
    """Whether a config ``type`` (or ``constructor``) names a densekd class.

    True for ``'densekd.X'`` and for un-prefixed names that densekd registers in mmengine's
    root registry ``registry_name`` (``DistillDistributedDataParallel``,
    ``DiscriminatorOptimWrapperConstructor``), which plain mmdet/mmseg cannot build.
    """
    if isinstance(name, type):
        return name.__module__.startswith('densekd')
    if not isinstance(name, str):
        return False
    if name.startswith('densekd.'):
        return True
    import mmengine.registry as mm_registries

    import densekd.models  # noqa: F401  (fills the root registries with densekd's names)
    cls = getattr(mm_registries, registry_name).module_dict.get(name)
    return cls is not None and cls.__module__.startswith('densekd')


def _densekd_types_left(node: Any, where: str = '') -> list[str]:
    """``'key.path: type'`` of every ``densekd.*`` type still in a config tree."""
    found = []
    if isinstance(node, dict):
        node_type = node.get('type')
        if isinstance(node_type, str) and node_type.startswith('densekd.'):
            found.append(f'{where or "<root>"}: {node_type}')
        for key, value in node.items():
            found += _densekd_types_left(value, f'{where}.{key}' if where else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += _densekd_types_left(value, f'{where}[{i}]')
    return found


def make_student_config(cfg: Config) -> Config:
    """The plain mmdet/mmseg config of the student of a distillation config.

    The result trains and tests the student with plain mmdet/mmseg tools, without densekd
    installed or imported. From the run's config (``runner.cfg``, or the config file):

    * ``model`` becomes the student's model, ``default_scope`` the student's scope;
    * ``resume=False``, ``load_from=None`` (a resumed or initialised run would otherwise
      make plain mmengine resume the student checkpoint and fail on its missing
      ``message_hub``), ``launcher='none'`` (the plain tools set their own);
    * ``work_dir`` is dropped: the plain tools then default to
      ``./work_dirs/<config name>``, never the distillation run's dir, whose ``epoch_N.pth``
      and ``last_checkpoint`` a plain training would overwrite;
    * ``model_wrapper_cfg`` is dropped if it names densekd's wrapper
      (``DistillDistributedDataParallel``, set by ``tools/dist_train.sh``); an
      ``optim_wrapper`` built by a densekd constructor
      (``DiscriminatorOptimWrapperConstructor``) becomes its ``model`` entry, the student's
      own optimiser (the discriminator belongs to the distillation);
    * densekd hooks (``custom_hooks`` types ``densekd.*``) and ``custom_imports`` of
      densekd modules are dropped, densekd dataset types (also in top-level variables such
      as ``dataset_type``) replaced by the plain config each declares as ``deploy_cfg``.

    Everything else (data, schedule, evaluators, ``env_cfg``, ``randomness``) is the run's
    own. A ``densekd.*`` type that survives all this is reported with a warning.

    Args:
        cfg: a distillation config whose ``model`` is a ``densekd.DistillationModel``.

    Returns:
        A new Config.
    """
    spec = load_model_spec(cfg.model['student'], 'student')
    data = copy.deepcopy(cfg.to_dict())
    model = copy.deepcopy(spec.model.to_dict())
    model.pop('_scope_', None)
    data['model'] = model
    if spec.scope:
        data['default_scope'] = spec.scope
    data.update(resume=False, load_from=None, launcher='none')
    data.pop('work_dir', None)
    wrapper = data.get('model_wrapper_cfg')
    if isinstance(wrapper, dict) and _is_densekd_type(wrapper.get('type'), 'MODEL_WRAPPERS'):
        data.pop('model_wrapper_cfg')
    optim = data.get('optim_wrapper')
    if isinstance(optim, dict) and _is_densekd_type(optim.get('constructor'),
                                                     'OPTIM_WRAPPER_CONSTRUCTORS'):
        if 'model' not in optim:
            raise KeyError(f'optim_wrapper: constructor {optim["constructor"]!r} without a '
                           '`model` entry; the student config takes its optimiser from it')
        data['optim_wrapper'] = optim['model']
    hooks = [h for h in data.get('custom_hooks', []) or []
             if not _is_densekd_type(h.get('type'), 'HOOKS')]
    data['custom_hooks'] = hooks
    imports = data.get('custom_imports')
    if imports:
        kept = [m for m in imports.get('imports', [])
                if m != 'densekd' and not m.startswith('densekd.')]
        if kept:
            data['custom_imports'] = dict(imports, imports=kept)
        else:
            data.pop('custom_imports')
    data = _deploy_types(data)
    for key, value in data.items():  # variables such as dataset_type = 'densekd.ToyDetDataset'
        if isinstance(value, str) and value.startswith('densekd.'):
            data[key] = _deploy_types({'type': value})['type']
    left = _densekd_types_left(data) + [f'{k}: {v}' for k, v in data.items()
                                        if isinstance(v, str) and v.startswith('densekd.')]
    if left:
        warnings.warn('the student config still names densekd types, which plain '
                      f'mmdet/mmseg cannot build: {"; ".join(left)}', stacklevel=2)
    return Config(data)
