"""tools/export_student.py refuses to write the student checkpoint over its source."""
import os
import os.path as osp
import subprocess
import sys

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_out_naming_the_checkpoint_is_refused_and_the_file_untouched(tmp_path):
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'student.w': torch.ones(2), 'components.p': torch.ones(1)},
                'meta': {'epoch': 1}}, ckpt)
    os.utime(ckpt, (1_000_000_000, 1_000_000_000))
    before = ckpt.read_bytes()
    env = dict(os.environ, PYTHONPATH=REPO)
    # the same file through a relative path (run from tmp_path)
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools/export_student.py'),
                           str(ckpt), '--out', 'epoch_1.pth'], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "export_student: the output 'epoch_1.pth' is the distillation checkpoint")
    assert 'Give another output path (`--out` of tools/export_student.py)' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert ckpt.read_bytes() == before and os.stat(ckpt).st_mtime == 1_000_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']
