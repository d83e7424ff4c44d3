"""densekd: dense knowledge distillation on mmdet 3.x / mmsegmentation 1.x.

Development install: ``python3 tools/install_env.py`` (builds mmcv with ops and
installs this package with ``pip install --no-deps -e .``).
"""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version():
    with open(osp.join(HERE, 'densekd', 'version.py'), encoding='utf-8') as f:
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
    if match is None:
        raise RuntimeError('cannot find __version__ in densekd/version.py')
    return match.group(1)


setup(
    name='densekd',
    version=get_version(),
    description='Knowledge distillation for dense prediction (mmdet / mmseg)',
    packages=find_packages(include=['densekd', 'densekd.*']),
    python_requires='>=3.9',
    # Loose ranges; the tested pins live in requirements/runtime.txt. mmcv needs
    # compiled ops and is installed by tools/install_env.py, not by pip here.
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10,<1.0',
        'mmcv>=2.0,<2.2',
        'mmdet>=3.3,<3.4',
        'mmsegmentation>=1.2,<1.3',
        'pycocotools',
        'ftfy',
        'regex',
        'numpy',
    ],
    extras_require={'tests': ['pytest', 'ruff']},
    zip_safe=False,
)
