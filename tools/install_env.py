#!/usr/bin/env python3
"""Create or refresh the densekd development environment (stdlib only).

Usage (from anywhere, with the system python3):

    python3 tools/install_env.py            # runtime environment
    python3 tools/install_env.py --tests    # + pytest / ruff

GPU machines, keeping the torch that matches the CUDA driver (no ``.venv``):

    python3 tools/install_env.py --python /path/to/env/bin/python
    /path/to/env/bin/python tools/install_env.py --no-venv   # the same

Steps, each skipped when already done (the script is idempotent):

1. create ``.venv`` in the repository root (not with ``--python``/``--no-venv``:
   that interpreter and its torch/torchvision are used as they are);
2. ``pip install -r requirements/build.txt -r requirements/runtime.txt``
   (+ ``requirements/tests.txt`` with ``--tests``). With ``--python`` the
   torch/torchvision lines are dropped and pip gets a constraints file pinning
   the interpreter's own torch/torchvision; the script fails if they changed;
3. ensure mmcv 2.1.0 *with ops*: mmcv has no wheel for recent torch, so it is
   built once from its PyPI sdist and the wheel is cached outside the repo in
   ``${XDG_CACHE_HOME:-~/.cache}/densekd/wheels/<key>/`` where ``<key>`` names
   the mmcv version, ``torch.__version__``, cpu/cuda ops, python tag and
   platform (+ the CUDA archs for cuda ops). CUDA ops are built when torch is a
   CUDA build, a GPU is visible and ``nvcc`` is found, for the visible GPUs'
   archs (``TORCH_CUDA_ARCH_LIST`` overrides). ``DENSEKD_MMCV_WHEEL=/path/to/mmcv.whl``
   skips the build;
4. ``pip install --no-deps -e .`` for densekd itself.

Environment variables:
    DENSEKD_MMCV_WHEEL   install this mmcv wheel instead of building one
    DENSEKD_CACHE_DIR    cache root (default ${XDG_CACHE_HOME:-~/.cache}/densekd)
    MAX_JOBS             parallel compile jobs for mmcv (default: all usable cores)
    FORCE_CUDA=1         build mmcv CUDA ops even without a visible GPU
    TORCH_CUDA_ARCH_LIST CUDA archs for mmcv ops (default: the visible GPUs')
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / '.venv'
VPY = VENV / 'bin' / 'python'
REQ_DIR = ROOT / 'requirements'
BUILD_LOG = ROOT / 'build' / 'mmcv-build.log'

MMCV_VERSION = '2.1.0'
MMCV_SDIST = f'mmcv-{MMCV_VERSION}.tar.gz'
MMCV_SDIST_SHA256 = 'd387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f'
MMCV_SIMPLE_INDEX = 'https://pypi.org/simple/mmcv/'
MIN_PYTHON = (3, 9)
# requirement names that --python/--no-venv keep as the interpreter has them
TORCH_PACKAGES = ('torch', 'torchvision')

# The interpreter every step runs and installs into: .venv's python, or the one
# named by --python/--no-venv (main() sets it before the first step).
PY = VPY

# Run inside the venv: proves mmcv imports its compiled ops and they work.
MMCV_SMOKE = f"""
import mmcv, mmcv.ops, torch
from mmcv.ops import RoIAlign, nms
assert mmcv.__version__ == {MMCV_VERSION!r}, mmcv.__version__
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]])
scores = torch.tensor([0.9, 0.8, 0.7])
dets, keep = nms(boxes, scores, iou_threshold=0.5)
assert keep.tolist() == [0, 2], keep
rois = torch.tensor([[0., 0., 0., 8., 8.]])
out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2)(torch.rand(1, 3, 16, 16), rois)
assert tuple(out.shape) == (1, 3, 2, 2), out.shape
if torch.cuda.is_available():  # the CUDA kernels too, where they can run
    dets, keep = nms(boxes.cuda(), scores.cuda(), iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
print('mmcv', mmcv.__version__, 'ops ok', '(cpu + cuda)' if torch.cuda.is_available() else '')
"""

# Run inside the venv: facts that decide which mmcv binary fits.
ENV_PROBE = """
import json, os, sys, sysconfig
import torch
cuda = bool(torch.version.cuda) and (
    torch.cuda.is_available() or os.environ.get('FORCE_CUDA', '0') == '1')
cuda_home = None
if cuda:
    from torch.utils.cpp_extension import CUDA_HOME as cuda_home
print(json.dumps(dict(
    torch=torch.__version__,
    torch_cuda=torch.version.cuda,
    ops='cuda' if cuda else 'cpu',
    cuda_home=cuda_home,
    capabilities=[torch.cuda.get_device_capability(i)
                  for i in range(torch.cuda.device_count())] if cuda else [],
    scripts=sysconfig.get_path('scripts'),
    pytag='%s%d%d' % ({'cpython': 'cp', 'pypy': 'pp'}.get(
        sys.implementation.name, sys.implementation.name),
        sys.version_info[0], sys.version_info[1]),
    platform=sysconfig.get_platform().replace('-', '_').replace('.', '_'),
)))
"""

# Run inside the venv: which requirement lines are not satisfied yet.
REQ_CHECK = """
import json, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
missing = []
for line in json.loads(sys.argv[1]):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        have = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        missing.append(line + ' (not installed)')
        continue
    if not req.specifier.contains(have, prereleases=True):
        missing.append('%s (have %s)' % (line, have))
print(json.dumps(missing))
"""

# Run in the target interpreter: the torch it has (--python/--no-venv keep it).
TORCH_PROBE = """
import json
from importlib import metadata
import torch
def dist(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
try:
    import torchvision
    vision_error = None
except Exception as e:  # absent, or built for another torch
    vision_error = '%s: %s' % (type(e).__name__, e)
print(json.dumps(dict(version=torch.__version__, cuda=torch.version.cuda,
                      torch=dist('torch') or torch.__version__,
                      torchvision=dist('torchvision'), vision_error=vision_error)))
"""


class InstallError(RuntimeError):
    pass


def log(msg):
    print(f'[install] {msg}', flush=True)


def run(cmd, quiet=False, **kwargs):
    """Run a command, echoing it; raise InstallError on failure."""
    log('$ ' + ' '.join(str(c) for c in cmd))
    if quiet:
        res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                             **kwargs)
    else:
        res = subprocess.run([str(c) for c in cmd], **kwargs)
    if res.returncode != 0:
        if quiet:
            sys.stdout.write(res.stdout[-4000:])
            sys.stderr.write(res.stderr[-4000:])
        raise InstallError(f'command failed with exit code {res.returncode}: '
                           + ' '.join(str(c) for c in cmd))
    return res


def pip(*args, quiet=False):
    return run([PY, '-m', 'pip', *args], quiet=quiet)


def venv_python(code, *args):
    """Run code in the target python (PY); return (ok, combined output)."""
    try:
        res = subprocess.run([str(PY), '-c', code, *args], capture_output=True,
                             text=True, cwd=tempfile.gettempdir())
    except OSError as e:  # not an executable, not a program this system can run
        return False, f'cannot run {PY}: {e}'
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def cache_root():
    if os.environ.get('DENSEKD_CACHE_DIR'):
        return Path(os.environ['DENSEKD_CACHE_DIR']).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(Path.home(), '.cache')
    return Path(base).expanduser() / 'densekd'


# --------------------------------------------------------------------------- venv
def ensure_venv():
    if VPY.exists():
        ok, out = venv_python('import sys; print(sys.version_info[:2] >= %r)'
                              % (MIN_PYTHON, ))
        if ok and out.strip() == 'True':
            log(f'venv {VENV} exists - skip')
            return
        log(f'venv {VENV} is broken or too old ({out[-200:]!r}); recreating it')
        shutil.rmtree(VENV)
    if sys.version_info[:2] < MIN_PYTHON:
        raise InstallError(f'python >= {MIN_PYTHON} needed, this is {sys.version}')
    log(f'creating venv {VENV} with {sys.executable}')
    run([sys.executable, '-m', 'venv', VENV])
    if not VPY.exists():
        raise InstallError('venv creation did not produce .venv/bin/python '
                           '(on Debian/Ubuntu: apt-get install python3-venv)')


# ------------------------------------------- keep-torch mode (--python / --no-venv)
def resolve_python(arg):
    """Absolute path of the interpreter named by ``--python``.

    A bare name (``python3``) is looked up on PATH. Symlinks are not resolved: a
    venv's ``bin/python`` links to its base interpreter, which is another
    environment.
    """
    found = shutil.which(arg) if os.sep not in arg else os.path.expanduser(arg)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise InstallError(
            f'--python {arg}: no such interpreter. Pass the python of the environment '
            'whose torch you want to keep, e.g. --python /opt/conda/envs/NAME/bin/python '
            '(`python -c "import sys; print(sys.executable)"` inside it prints it), or '
            'run this script with that python and --no-venv.')
    return Path(os.path.abspath(found))


def probe_kept_torch():
    """Check that PY is usable and has torch + torchvision; return their versions.

    Returns:
        dict: ``version`` (``torch.__version__``), ``cuda`` (``torch.version.cuda``),
        ``torch`` and ``torchvision`` (installed distribution versions; None
        without metadata), ``vision_error`` (None: torchvision imports).
    """
    ok, out = venv_python('import sys; print(sys.version_info[:2] >= %r)' % (MIN_PYTHON, ))
    if not ok or out.splitlines()[-1] != 'True':
        raise InstallError(f'{PY} is not a python >= {MIN_PYTHON}: {out[-300:]!r}')
    ok, out = venv_python(TORCH_PROBE)
    if not ok:
        raise InstallError(
            f'{PY} cannot import torch:\n    {out.splitlines()[-1][:300]}\n'
            'Install the torch build for your CUDA driver into that environment first '
            '(https://pytorch.org/get-started/locally/), or run python3 '
            'tools/install_env.py without --python/--no-venv for a .venv with the '
            'torch pinned in requirements/runtime.txt.')
    info = json.loads(out.splitlines()[-1])
    if info['vision_error']:
        raise InstallError(
            f'{PY} has torch {info["version"]} but torchvision '
            f'{info["torchvision"] or "(not installed)"} does not import '
            f'({info["vision_error"][:300]}); mmdet and mmengine need it. '
            'Install the torchvision release made for that torch from the same source as '
            'torch (https://pytorch.org/get-started/previous-versions/); one from '
            'elsewhere would replace torch or not match it.')
    log(f'keeping torch {info["version"]} (CUDA {info["cuda"] or "none"}) and torchvision '
        f'{info["torchvision"]} of {PY}')
    return info


def requirement_name(line):
    """PEP 503 normalised project name of a requirement line (``Torch_X>=1`` -> torch-x)."""
    m = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line.strip())
    return re.sub(r'[-_.]+', '-', m.group(0)).lower() if m else None


def without_torch(lines):
    """Requirement lines minus those for torch/torchvision."""
    return [line for line in lines if requirement_name(line) not in TORCH_PACKAGES]


def torch_constraints(kept):
    """pip constraint lines pinning the interpreter's own torch/torchvision.

    Args:
        kept (dict): versions by name, as returned by :func:`probe_kept_torch`.
    """
    return [f'{name}=={kept[name]}' for name in TORCH_PACKAGES if kept[name]]


def check_torch_kept(kept):
    """Raise if torch/torchvision in PY are no longer the versions in ``kept``."""
    ok, out = venv_python(TORCH_PROBE)
    now = json.loads(out.splitlines()[-1]) if ok else {}
    labels = dict(version='torch.__version__', torch='torch', torchvision='torchvision',
                  vision_error='torchvision import error')
    changed = [f'{label} {kept[key]} -> {now.get(key, "(import fails)")}'
               for key, label in labels.items() if now.get(key) != kept[key]]
    if changed:
        raise InstallError(
            f'torch was changed in {PY}: {", ".join(changed)}. Reinstall your own torch '
            'build there (the command from https://pytorch.org/get-started/locally/ for '
            'your CUDA), and report this: --python must never replace torch.')


def cuda_arch_list(capabilities):
    """``TORCH_CUDA_ARCH_LIST`` for GPUs of these compute capabilities.

    Args:
        capabilities (list): ``torch.cuda.get_device_capability()`` tuples, e.g.
            ``[(9, 0)]`` for an H100/H200.

    Returns:
        str: e.g. ``'9.0'``; several archs sorted and ``;``-separated
        (``[(8, 6), (8, 0)]`` -> ``'8.0;8.6'``); ``''`` without GPUs.
    """
    return ';'.join(f'{major}.{minor}' for major, minor in
                    sorted({tuple(c) for c in capabilities}))


def default_jobs():
    """The cores this process may use (cpusets included), for MAX_JOBS."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ------------------------------------------------------------------ requirements
def read_requirements(path):
    """Requirement lines of a file, or None if it uses pip options."""
    lines = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split(' #')[0].strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('-'):
            return None
        lines.append(line)
    return lines


def ensure_requirements(files, kept=None):
    """pip-install the requirement files into PY unless already satisfied.

    Args:
        files (list[Path]): requirement files.
        kept (dict, optional): keep-torch mode: the interpreter's torch versions
            (:func:`probe_kept_torch`). torch/torchvision lines are dropped and pip
            gets constraints pinning these versions.
    """
    names = ' '.join(str(f.relative_to(ROOT)) for f in files)
    reqs = []
    for f in files:
        lines = read_requirements(f)
        if lines is None:
            reqs = None
            break
        reqs += lines
    if kept is not None:
        if reqs is None:
            raise InstallError(f'--python needs plain requirement lines; one of {names} '
                               'uses pip options')
        reqs = without_torch(reqs)
    if reqs is not None:
        ok, out = venv_python(REQ_CHECK, json.dumps(reqs))
        if ok and out.splitlines()[-1] == '[]':
            log(f'requirements satisfied ({names}) - skip')
            return
        if ok:
            for item in json.loads(out.splitlines()[-1]):
                log(f'  needs: {item}')
    log(f'installing requirements: {names}')
    if kept is None:
        args = []
        for f in files:
            args += ['-r', f]
        pip('install', *args)
        return
    with tempfile.TemporaryDirectory(prefix='densekd-req-') as tmp:
        req, con = Path(tmp) / 'requirements.txt', Path(tmp) / 'constraints.txt'
        req.write_text('\n'.join(reqs) + '\n')
        con.write_text('\n'.join(torch_constraints(kept)) + '\n')
        log(f'without {"/".join(TORCH_PACKAGES)}; constraints: '
            + ', '.join(torch_constraints(kept)))
        pip('install', '-r', req, '-c', con)
    check_torch_kept(kept)


# ------------------------------------------------------------------------- mmcv
def mmcv_verified():
    ok, out = venv_python(MMCV_SMOKE)
    return ok, out


def mmcv_installed_version():
    ok, out = venv_python('from importlib import metadata; '
                          'print(metadata.version("mmcv"))')
    return out.splitlines()[-1] if ok else None


def probe_env():
    ok, out = venv_python(ENV_PROBE)
    if not ok:
        raise InstallError(f'cannot import torch in {PY}:\n' + out[-2000:])
    env = json.loads(out.splitlines()[-1])
    if env['ops'] == 'cuda':
        env['cuda_arch'] = (os.environ.get('TORCH_CUDA_ARCH_LIST')
                            or cuda_arch_list(env['capabilities']))
    return env


def cache_key(env):
    """Cache folder name of the mmcv wheel that fits ``env`` (from :func:`probe_env`)."""
    ops = env['ops']
    if ops == 'cuda':  # kernels exist only for the archs compiled in
        ops += '-sm' + (env.get('cuda_arch') or 'default').replace(';', '-')
    key = (f'mmcv-{MMCV_VERSION}_torch-{env["torch"]}_{ops}ops_'
           f'{env["pytag"]}_{env["platform"]}')
    return re.sub(r'[^A-Za-z0-9._+-]', '_', key)


def install_wheel(whl):
    pip('install', '--no-deps', '--no-cache-dir', '--force-reinstall', whl)


def uninstall_mmcv():
    log('uninstalling mmcv')
    pip('uninstall', '-y', 'mmcv', 'mmcv-lite', 'mmcv-full', quiet=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


class _Links(HTMLParser):

    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == 'a':
            self.links += [v for k, v in attrs if k == 'href']


def download_sdist():
    """mmcv sdist from the PyPI simple index, sha256-checked, cached."""
    dest = cache_root() / 'sdist' / MMCV_SDIST
    if dest.exists() and sha256(dest) == MMCV_SDIST_SHA256:
        log(f'mmcv sdist cached at {dest} - skip download')
        return dest
    log(f'looking up {MMCV_SDIST} in {MMCV_SIMPLE_INDEX}')
    req = urllib.request.Request(MMCV_SIMPLE_INDEX,
                                 headers={'Accept': 'text/html'})
    parser = _Links()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            parser.feed(resp.read().decode('utf-8', 'replace'))
    except OSError as e:
        raise InstallError(f'cannot read {MMCV_SIMPLE_INDEX}: {e}')
    urls = [u for u in parser.links if u.split('#')[0].endswith('/' + MMCV_SDIST)]
    if not urls:
        raise InstallError(f'{MMCV_SDIST} not found in {MMCV_SIMPLE_INDEX}')
    url = urllib.parse.urljoin(MMCV_SIMPLE_INDEX, urls[0].split('#')[0])
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix('.part')
    log(f'downloading {url}')
    for attempt in range(3):
        try:
            with urllib.request.urlopen(url, timeout=120) as resp, \
                    open(tmp, 'wb') as f:
                shutil.copyfileobj(resp, f)
            break
        except OSError as e:
            if attempt == 2:
                raise InstallError(f'download of {url} failed: {e}')
            log(f'download failed ({e}); retrying')
            time.sleep(5)
    digest = sha256(tmp)
    if digest != MMCV_SDIST_SHA256:
        tmp.unlink()
        raise InstallError(f'sha256 mismatch for {url}: got {digest}, '
                           f'expected {MMCV_SDIST_SHA256}')
    os.replace(tmp, dest)
    log(f'sha256 ok, saved {dest}')
    return dest


def torch_at_least(torch_version, major, minor):
    m = re.match(r'(\d+)\.(\d+)', torch_version)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (major, minor)


def patch_mmcv_setup(src, env):
    """mmcv 2.1.0 hard-codes -std=c++17; torch >= 2.14 headers need C++20."""
    if not torch_at_least(env['torch'], 2, 14):
        log('torch < 2.14: keeping mmcv -std=c++17')
        return
    setup_py = src / 'setup.py'
    text = setup_py.read_text()
    new = text.replace("'-std=c++17'", "'-std=c++20'").replace(
        "'/std:c++17'", "'/std:c++20'")
    n = text.count("'-std=c++17'") + text.count("'/std:c++17'")
    if n == 0:
        log('WARNING: no -std=c++17 flag found in mmcv setup.py to patch')
    setup_py.write_text(new)
    log(f'patched {n} C++ standard flag(s) in mmcv setup.py: c++17 -> c++20 '
        f'(torch {env["torch"]})')


def ops_hint(env):
    cuda = env.get('torch_cuda')
    torch_mm = '.'.join(env['torch'].split('+')[0].split('.')[:2])
    tag = 'cu' + cuda.replace('.', '') if cuda else 'cpu'
    return (
        'To skip the build, install a prebuilt mmcv 2.1.0 wheel that matches '
        f'torch {env["torch"]}:\n'
        '    DENSEKD_MMCV_WHEEL=/path/to/mmcv-2.1.0-....whl python3 tools/install_env.py\n'
        'GPU users: OpenMMLab publishes prebuilt mmcv wheels per CUDA/torch at\n'
        f'    https://download.openmmlab.com/mmcv/dist/{tag}/torch{torch_mm}/index.html\n'
        '(only for the torch/CUDA pairs they built; otherwise use a torch version '
        'that has one, or fix the build error above).')


def summarize_build_log(path, n_errors=20, n_tail=30):
    """Error lines and the last lines of a pip build log (minus pip's cleanup)."""
    lines = path.read_text(errors='replace').splitlines()
    for i, line in enumerate(lines):  # cut pip's own epilogue (shim code, cleanup)
        if ('error: subprocess-exited-with-error' in line
                or 'Running setup.py clean for' in line):
            lines = lines[:i]
            break
    errors = [line for line in lines
              if re.search(r'error:|Error:|FAILED:|fatal error|Error\b.*returned', line)]
    out = []
    if errors:
        out += ['Error lines in the build log:'] + errors[-n_errors:]
    out += [f'Last lines of the build log (full log: {path}):'] + lines[-n_tail:]
    return '    ' + '\n    '.join(line[:400] for line in out)


def build_mmcv_wheel(env, out_dir):
    sdist = download_sdist()
    work = Path(tempfile.mkdtemp(prefix='densekd-mmcv-build-'))
    try:
        log(f'extracting {sdist.name} into {work}')
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, 'data_filter'):
                tar.extractall(work, filter='data')
            else:
                tar.extractall(work)
        src = work / f'mmcv-{MMCV_VERSION}'
        patch_mmcv_setup(src, env)

        build_env = dict(os.environ)
        build_env['MMCV_WITH_OPS'] = '1'
        build_env.setdefault('MAX_JOBS', str(default_jobs()))
        if env.get('cuda_arch'):
            build_env['TORCH_CUDA_ARCH_LIST'] = env['cuda_arch']
        # the target's scripts folder first: its ninja (requirements/build.txt)
        build_env['PATH'] = env['scripts'] + os.pathsep + build_env.get('PATH', '')
        if shutil.which('ninja', path=build_env['PATH']) is None:
            log('WARNING: ninja not found - mmcv ops will compile serially (slow)')
        BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
        dist = work / 'dist'
        cmd = [str(PY), '-m', 'pip', 'wheel', '-v', '--no-build-isolation',
               '--no-deps', '--no-cache-dir', '-w', str(dist), str(src)]
        arch = (f', TORCH_CUDA_ARCH_LIST={env["cuda_arch"]}' if env.get('cuda_arch')
                else '')
        log(f'building mmcv {MMCV_VERSION} with {env["ops"]} ops for torch '
            f'{env["torch"]} (MAX_JOBS={build_env["MAX_JOBS"]}{arch}); this takes '
            '~10 min on 2 cores (cuda ops: ~3 min with 16 jobs for one arch). '
            f'Log: {BUILD_LOG}')
        log('$ MMCV_WITH_OPS=1 ' + ' '.join(cmd))
        start = time.time()
        with open(BUILD_LOG, 'w') as logf:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    env=build_env, cwd=src)
            while True:
                try:
                    proc.wait(timeout=60)
                    break
                except subprocess.TimeoutExpired:
                    log(f'  ... still building mmcv ({(time.time() - start) / 60:.0f} '
                        'min elapsed)')
        wheels = sorted(dist.glob('mmcv-*.whl'))
        if proc.returncode != 0 or not wheels:
            raise InstallError(
                f'mmcv build failed (exit code {proc.returncode}).\n'
                + summarize_build_log(BUILD_LOG) + '\n' + ops_hint(env))
        log(f'mmcv wheel built in {time.time() - start:.0f}s: {wheels[0].name}')
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / (wheels[0].name + '.part')
        shutil.copy2(wheels[0], tmp)
        os.replace(tmp, out_dir / wheels[0].name)
        (out_dir / 'build-info.json').write_text(json.dumps(
            dict(env, mmcv=MMCV_VERSION, built=time.strftime('%Y-%m-%d %H:%M:%S')),
            indent=2) + '\n')
        log(f'cached {out_dir / wheels[0].name}')
        return out_dir / wheels[0].name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_mmcv():
    ok, out = mmcv_verified()
    if ok:
        log(f'{out.splitlines()[-1]} (installed and verified) - skip')
        if os.environ.get('DENSEKD_MMCV_WHEEL'):
            log('DENSEKD_MMCV_WHEEL ignored: a working mmcv is already installed '
                f'({PY} -m pip uninstall mmcv to replace it)')
        return
    have = mmcv_installed_version()
    if have is not None:
        log(f'mmcv {have} installed but fails verification:\n    '
            + '\n    '.join(out.splitlines()[-5:]))
        uninstall_mmcv()

    env = probe_env()
    user_wheel = os.environ.get('DENSEKD_MMCV_WHEEL')
    if user_wheel:
        whl = Path(user_wheel).expanduser().resolve()
        if not whl.is_file():
            raise InstallError(f'DENSEKD_MMCV_WHEEL={user_wheel}: no such file')
        log(f'installing mmcv from DENSEKD_MMCV_WHEEL={whl}')
        install_wheel(whl)
        ok, out = mmcv_verified()
        if not ok:
            raise InstallError(f'mmcv from {whl} fails verification:\n{out[-3000:]}\n'
                               f'Is it mmcv {MMCV_VERSION} built for torch '
                               f'{env["torch"]} / {env["pytag"]}?')
        log(out.splitlines()[-1])
        return

    key = cache_key(env)
    cache_dir = cache_root() / 'wheels' / key
    log(f'mmcv cache key: {key}')
    cached = sorted(cache_dir.glob(f'mmcv-{MMCV_VERSION}-*.whl'))
    if cached:
        log(f'installing cached mmcv wheel {cached[0]}')
        install_wheel(cached[0])
        ok, out = mmcv_verified()
        if ok:
            log(out.splitlines()[-1])
            return
        log('cached mmcv wheel fails verification; discarding it and rebuilding:\n'
            '    ' + '\n    '.join(out.splitlines()[-5:]))
        shutil.rmtree(cache_dir, ignore_errors=True)
        uninstall_mmcv()

    if env['ops'] == 'cuda' and not env['cuda_home']:
        raise InstallError(
            f'torch {env["torch"]} is a CUDA {env["torch_cuda"]} build and CUDA ops are '
            'wanted (a GPU is visible, or FORCE_CUDA=1), but nvcc (the CUDA toolkit) is '
            'not found, so mmcv CUDA ops cannot be built. Install CUDA toolkit '
            f'{env["torch_cuda"]} and set CUDA_HOME (or put its nvcc on PATH), or build '
            'CPU-only ops with CUDA_VISIBLE_DEVICES= '
            '(mmcv ops then fail on GPU tensors).\n' + ops_hint(env))
    whl = build_mmcv_wheel(env, cache_dir)
    install_wheel(whl)
    ok, out = mmcv_verified()
    if not ok:
        raise InstallError('freshly built mmcv fails verification:\n' + out[-3000:]
                           + '\n' + ops_hint(env))
    log(out.splitlines()[-1])


# ---------------------------------------------------------------------- densekd
def ensure_densekd():
    code = """
import json
from importlib import metadata
try:
    d = metadata.distribution('densekd')
except metadata.PackageNotFoundError:
    print('null')
else:
    print(json.dumps(dict(version=d.version,
                          direct_url=d.read_text('direct_url.json'))))
"""
    ok, out = venv_python(code)
    info = json.loads(out.splitlines()[-1]) if ok else None
    want_version = re.search(r"__version__\s*=\s*['\"]([^'\"]+)",
                             (ROOT / 'densekd' / 'version.py').read_text()).group(1)
    if info:
        direct = json.loads(info['direct_url'] or '{}')
        editable = direct.get('dir_info', {}).get('editable', False)
        url = direct.get('url', '')
        if (editable and url.rstrip('/') == ROOT.as_uri()
                and info['version'] == want_version):
            log(f'densekd {want_version} installed in editable mode - skip')
            return
    log(f'installing densekd (editable, no deps) into {PY}')
    pip('install', '--no-deps', '--no-build-isolation', '-e', ROOT)


def main():
    global PY
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tests', action='store_true',
                        help='also install requirements/tests.txt (pytest, ruff)')
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument('--python', metavar='PATH',
                      help='install into this interpreter instead of .venv, keeping its '
                      'torch/torchvision (GPU machines: the torch built for the driver)')
    keep.add_argument('--no-venv', action='store_true',
                      help='same as --python with the interpreter running this script')
    args = parser.parse_args()
    start = time.time()
    kept = None
    try:
        if args.python or args.no_venv:
            PY = resolve_python(args.python or sys.executable)
            kept = probe_kept_torch()
        else:
            ensure_venv()
        files = [REQ_DIR / 'build.txt', REQ_DIR / 'runtime.txt']
        if args.tests:
            files.append(REQ_DIR / 'tests.txt')
        ensure_requirements(files, kept)
        ensure_mmcv()
        ensure_densekd()
        if kept is not None:
            check_torch_kept(kept)
    except InstallError as e:
        print(f'[install] ERROR: {e}', file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print('[install] interrupted', file=sys.stderr)
        return 130
    log(f'done in {time.time() - start:.1f}s ({PY})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
