"""``mmseg::``/``mmdet::`` config references on every distribution of the OpenMMLab packages.

mmengine resolves ``_base_ = ['mmseg::pspnet/...']`` through its table
``mmengine.config.utils.MODULE2PACKAGE`` (``'mmseg' -> 'mmsegmentation'``): it asks whether
that *distribution* is installed and where it lives. The same modules also ship under other
distribution names (OneDL's maintained forks: ``onedl-mmsegmentation`` provides ``mmseg``),
and then mmengine reports "mmsegmentation is not installed" although ``import mmseg``
works. :func:`fix_config_package_names` corrects the table's entries (data only; mmengine's
functions are untouched) so that they name something mmengine resolves to the installed
module.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os.path as osp
from collections.abc import Callable, MutableMapping

__all__ = ['fix_config_package_names']


def _module_dir(module: str) -> str | None:
    """The directory of the importable top-level package ``module`` (not imported), or None."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:  # absent, or a namespace package
        return None
    return osp.realpath(osp.dirname(spec.origin))


def _distribution_installed(name: str) -> bool:
    """Whether ``importlib.metadata`` knows a distribution called ``name``."""
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _mmengine_resolves(name: str, module_dir: str) -> bool:
    """Whether mmengine finds ``name`` installed and locates it at ``module_dir``.

    Asks mmengine's own ``is_installed``/``get_installed_path``, so the answer holds for
    whichever mmengine is installed (OpenMMLab's reads ``pkg_resources``, OneDL's
    ``importlib.metadata``).
    """
    from mmengine.utils import get_installed_path, is_installed

    try:
        return is_installed(name) and osp.realpath(get_installed_path(name)) == module_dir
    except Exception:  # noqa: BLE001 - any failure means mmengine cannot use this name
        return False


def fix_config_package_names(
        table: MutableMapping[str, str] | None = None,
        distributions: Callable[[], dict[str, list[str]]] | None = None) -> dict[str, str]:
    """Point mmengine's module -> distribution table at what is actually installed.

    For every module in the table (``'mmseg'``, ``'mmdet'``, ...) that imports but whose
    named distribution ``importlib.metadata`` does not know, and which mmengine does not
    already resolve to that module, the entry becomes the first of: an installed
    distribution providing the module (so mmengine's "pip install X" hints name it), or the
    module name itself (mmengine then finds it by import spec), whichever mmengine resolves
    to the module's directory. Entries whose distribution is installed, and modules that do
    not import, are left alone. Runs at ``import densekd``; calling it again changes nothing.

    Args:
        table: the table to correct in place; default mmengine's ``MODULE2PACKAGE`` (the
            dict its registry, config and inference code all read).
        distributions: a callable giving top-level module -> distribution names; default
            ``importlib.metadata.packages_distributions``.

    Returns:
        The entries changed, module -> new distribution name (empty when none).
    """
    if table is None:
        from mmengine.config.utils import MODULE2PACKAGE as table
    changed: dict[str, str] = {}
    providers: dict[str, list[str]] | None = None
    for module, expected in list(table.items()):
        module_dir = _module_dir(module)
        if module_dir is None or _distribution_installed(expected):
            continue
        if _mmengine_resolves(expected, module_dir):  # e.g. 'mmdet' found by import spec
            continue
        if providers is None:
            providers = (distributions or importlib.metadata.packages_distributions)()
        for candidate in [*providers.get(module, []), module]:
            if candidate != expected and _mmengine_resolves(candidate, module_dir):
                table[module] = changed[module] = candidate
                break
    return changed
