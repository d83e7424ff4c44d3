"""tools/install_env.py's keep-torch mode (--python / --no-venv).

The end-to-end test runs the installer against the interpreter running pytest with
everything already installed: it must change nothing (every step skips, no pip command
runs) and keep torch as it is. It is skipped when that environment is incomplete, since
the installer would then install into it.
"""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'install_env.py')


def load_installer():
    spec = importlib.util.spec_from_file_location('install_env', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


inst = load_installer()


def run_installer(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_torch_lines_dropped_from_the_pinned_set():
    runtime = inst.read_requirements(osp.join(REPO, 'requirements', 'runtime.txt'))
    assert 'torch==2.14.1' in runtime and 'torchvision==0.29.1' in runtime
    kept = inst.without_torch(runtime)
    assert kept == [line for line in runtime
                    if line not in ('torch==2.14.1', 'torchvision==0.29.1')]
    assert len(kept) == len(runtime) - 2
    # names compare PEP 503-normalised; torch* projects other than these two stay
    lines = ['Torch>=2.1 ; python_version >= "3.9"', 'TorchVision[extra]==0.18',
             'torchaudio==2.3.0', 'torch-vision==0.1', 'numpy==2.4.6']
    assert inst.without_torch(lines) == ['torchaudio==2.3.0', 'torch-vision==0.1',
                                         'numpy==2.4.6']


def test_constraints_pin_the_interpreters_versions():
    kept = dict(version='2.3.0+cu121', cuda='12.1', torch='2.3.0+cu121',
                torchvision='0.18.0+cu121')
    lines = inst.torch_constraints(kept)
    assert lines == ['torch==2.3.0+cu121', 'torchvision==0.18.0+cu121']
    try:  # pip's own reading of the lines: each admits that build and no other
        from packaging.requirements import Requirement
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
    torch, vision = (Requirement(line) for line in lines)
    assert torch.specifier.contains('2.3.0+cu121')
    assert not torch.specifier.contains('2.3.0') and not torch.specifier.contains('2.14.1')
    assert vision.specifier.contains('0.18.0+cu121')
    assert not vision.specifier.contains('0.29.1')
    # a package without distribution metadata gets no (invalid 'name==None') line
    assert inst.torch_constraints(dict(kept, torchvision=None)) == ['torch==2.3.0+cu121']


def test_cuda_arch_from_capabilities():
    assert inst.cuda_arch_list([(9, 0)]) == '9.0'  # H100 / H200
    assert inst.cuda_arch_list([[8, 6], [8, 0], [8, 6]]) == '8.0;8.6'  # JSON gives lists
    assert inst.cuda_arch_list([(12, 0), (9, 0)]) == '9.0;12.0'  # numeric order
    assert inst.cuda_arch_list([]) == ''


def test_cache_key():
    env = dict(torch='2.14.1+cu130', ops='cpu', pytag='cp311', platform='linux_x86_64')
    # cpu ops: the key the default install has always used (its cached wheels stay valid)
    assert inst.cache_key(env) == 'mmcv-2.1.0_torch-2.14.1+cu130_cpuops_cp311_linux_x86_64'
    env.update(ops='cuda', cuda_arch='8.0;9.0')
    assert inst.cache_key(env) == (
        'mmcv-2.1.0_torch-2.14.1+cu130_cuda-sm8.0-9.0ops_cp311_linux_x86_64')


def test_missing_interpreter_names_the_fix(tmp_path):
    res = run_installer('--python', str(tmp_path / 'nowhere' / 'python'), cwd=str(tmp_path))
    assert res.returncode == 1
    assert 'no such interpreter' in res.stderr
    assert '/bin/python' in res.stderr and '--no-venv' in res.stderr
    assert not (tmp_path / '.venv').exists()


def test_interpreter_without_torch_names_the_fix(tmp_path):
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    env_py = env_dir / 'bin' / 'python'
    site = sysconfig.get_path('purelib', vars={'base': str(env_dir)})
    before = sorted(os.listdir(site))
    # --python with it, and --no-venv when it runs the script
    for res in (run_installer('--python', str(env_py), cwd=str(tmp_path)),
                subprocess.run([str(env_py), SCRIPT, '--no-venv'], capture_output=True,
                               text=True, cwd=str(tmp_path), timeout=60)):
        assert res.returncode == 1, res.stdout + res.stderr
        assert f'{env_py} cannot import torch' in res.stderr
        assert 'pytorch.org' in res.stderr and 'without --python' in res.stderr
    assert sorted(os.listdir(site)) == before  # nothing installed into it


def test_interpreter_without_torchvision_names_the_fix(tmp_path):
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    site = sysconfig.get_path('purelib', vars={'base': str(env_dir)})
    os.makedirs(osp.join(site, 'torch'))
    with open(osp.join(site, 'torch', '__init__.py'), 'w') as f:  # a stand-in torch
        f.write("__version__ = '2.3.0+cu121'\n\nclass version:\n    cuda = '12.1'\n")
    res = run_installer('--python', str(env_dir / 'bin' / 'python'), cwd=str(tmp_path))
    assert res.returncode == 1, res.stdout + res.stderr
    assert ('has torch 2.3.0+cu121 but torchvision (not installed) does not import'
            in res.stderr)
    assert 'previous-versions' in res.stderr
    assert sorted(os.listdir(site)) == ['torch']


def test_changed_torch_fails_loudly(tmp_path, monkeypatch):
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    site = sysconfig.get_path('purelib', vars={'base': str(env_dir)})
    for name, text in (('torch', "__version__ = '2.4.0+cu121'\n\nclass version:\n"
                                 "    cuda = '12.1'\n"), ('torchvision', '')):
        os.makedirs(osp.join(site, name))
        with open(osp.join(site, name, '__init__.py'), 'w') as f:
            f.write(text)
    monkeypatch.setattr(inst, 'PY', env_dir / 'bin' / 'python')
    now = dict(version='2.4.0+cu121', cuda='12.1', torch='2.4.0+cu121', torchvision=None,
               vision_error=None)
    inst.check_torch_kept(now)  # unchanged: passes
    with pytest.raises(inst.InstallError,
                       match=r'torch\.__version__ 2\.3\.0\+cu121 -> 2\.4\.0\+cu121, '
                       r'torch 2\.3\.0\+cu121 -> 2\.4\.0\+cu121\. Reinstall'):
        inst.check_torch_kept(dict(now, version='2.3.0+cu121', torch='2.3.0+cu121'))


def dist_info_mtimes() -> dict:
    """mtime of every installed distribution's metadata folder (a reinstall renews it)."""
    site = sysconfig.get_path('purelib')
    return {name: os.stat(osp.join(site, name)).st_mtime_ns for name in os.listdir(site)
            if name.endswith('.dist-info')}


def environment_complete() -> bool:
    """Whether every step of the installer would skip in sys.executable."""
    inst.PY = sys.executable
    try:
        reqs = []
        for name in ('build.txt', 'runtime.txt'):
            reqs += inst.read_requirements(osp.join(REPO, 'requirements', name))
        ok, out = inst.venv_python(inst.REQ_CHECK, json.dumps(inst.without_torch(reqs)))
        mmcv_ok, _ = inst.venv_python(inst.MMCV_SMOKE)
    finally:
        inst.PY = inst.VPY
    import densekd
    return (ok and out.splitlines()[-1] == '[]' and mmcv_ok
            and osp.dirname(osp.dirname(osp.abspath(densekd.__file__))) == REPO)


def test_keep_torch_on_a_complete_environment_changes_nothing(tmp_path):
    if not environment_complete():
        pytest.skip(f'{sys.executable} lacks part of the install (it would be installed)')
    import torch
    mtimes = dist_info_mtimes()
    venv_cfg = os.stat(osp.join(REPO, '.venv', 'pyvenv.cfg')).st_mtime_ns
    res = run_installer('--python', sys.executable, cwd=str(tmp_path))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert f'keeping torch {torch.__version__}' in out
    assert 'requirements satisfied' in out
    assert 'mmcv 2.1.0 ops ok' in out and '(installed and verified) - skip' in out
    assert 'installed in editable mode - skip' in out
    assert '[install] $ ' not in out  # no command (pip, venv) was run
    assert 'creating venv' not in out and not (tmp_path / '.venv').exists()
    assert os.stat(osp.join(REPO, '.venv', 'pyvenv.cfg')).st_mtime_ns == venv_cfg
    assert dist_info_mtimes() == mtimes
    after = subprocess.run([sys.executable, '-c', 'import torch; print(torch.__version__)'],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert after == torch.__version__
