"""mmseg:: config references build when mmengine's module -> distribution table names a
distribution that is not installed (OneDL's forks install `mmseg` as onedl-mmsegmentation).

The fork is simulated on this stack by the mirror-image mismatch: the table names a
distribution that does not exist while the installed one provides `mmseg`."""
import importlib.metadata
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE

import densekd  # noqa: F401  (runs the fix once at import)
from densekd.utils.compat import fix_config_package_names

MISSING = 'mmsegmentation-not-installed'
MMSEG_DIR = osp.realpath(osp.dirname(importlib.util.find_spec('mmseg').origin))
PSPNET_BASE = '_base_/models/pspnet_r50-d8.py'


def write_config(tmp_path) -> str:
    path = tmp_path / 'uses_mmseg.py'
    path.write_text(f"_base_ = ['mmseg::{PSPNET_BASE}']\n")
    return str(path)


def test_missing_distribution_name_fails_before_and_builds_after_the_fix(tmp_path, monkeypatch):
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution(MISSING)
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', MISSING)
    config = write_config(tmp_path)
    with pytest.raises(ModuleNotFoundError, match=f'{MISSING} is not installed'):
        Config.fromfile(config)

    changed = fix_config_package_names()

    providers = importlib.metadata.packages_distributions()['mmseg']
    assert changed == {'mmseg': MODULE2PACKAGE['mmseg']}
    assert changed['mmseg'] in [*providers, 'mmseg']
    if 'mmsegmentation' in providers:  # OpenMMLab's wheel: the distribution is named
        assert changed['mmseg'] == 'mmsegmentation'
    cfg = Config.fromfile(config)
    # the values of mmseg's own pspnet_r50-d8.py, read from the installed package
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.decode_head.type == 'PSPHead'
    assert cfg.model.decode_head.pool_scales == (1, 2, 3, 6)
    assert osp.isfile(osp.join(MMSEG_DIR, '.mim', 'configs', PSPNET_BASE))


def test_without_a_known_distribution_the_module_name_is_used(tmp_path, monkeypatch):
    # e.g. a distribution whose metadata does not list its top-level modules
    monkeypatch.setitem(MODULE2PACKAGE, 'mmseg', MISSING)
    assert fix_config_package_names(distributions=lambda: {}) == {'mmseg': 'mmseg'}
    assert MODULE2PACKAGE['mmseg'] == 'mmseg'
    assert Config.fromfile(write_config(tmp_path)).model.decode_head.type == 'PSPHead'


def test_consistent_and_absent_entries_are_left_alone(monkeypatch):
    monkeypatch.setitem(MODULE2PACKAGE, 'mmnotinstalled', 'mmnotinstalled-dist')
    before = dict(MODULE2PACKAGE)
    assert fix_config_package_names() == {}  # import densekd already ran it: idempotent
    assert dict(MODULE2PACKAGE) == before
    assert MODULE2PACKAGE['mmnotinstalled'] == 'mmnotinstalled-dist'


def test_a_given_table_is_corrected_instead_of_mmengines():
    table = {'mmseg': MISSING, 'mmnotinstalled': 'x'}
    before = dict(MODULE2PACKAGE)
    changed = fix_config_package_names(table, distributions=lambda: {'mmseg': [MISSING]})
    # the listed provider does not resolve, so the module name is the one that does
    assert changed == {'mmseg': 'mmseg'}
    assert table == {'mmseg': 'mmseg', 'mmnotinstalled': 'x'}
    assert dict(MODULE2PACKAGE) == before
