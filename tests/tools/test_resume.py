"""``tools/train.py --resume``: what is resumed, and the errors when there is nothing (or
nothing readable) to resume (densekd.utils.resume)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from densekd.utils.resume import (
    AUTO,
    LATEST,
    ResumeError,
    checkpoint_problem,
    previous_checkpoints,
    resolve_resume,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DISTILL = osp.join(REPO, 'configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py')


def save(path, value=0.0):
    torch.save({'state_dict': {'w': torch.full((64, 64), value)}, 'meta': {}}, path)
    return str(path)


def truncate(src, dst):
    data = open(src, 'rb').read()
    with open(dst, 'wb') as f:
        f.write(data[:len(data) // 2])
    return str(dst)


def point_last(work_dir, path):
    (work_dir / 'last_checkpoint').write_text(str(path))


def test_not_given_resumes_nothing(tmp_path):
    save(tmp_path / 'epoch_1.pth')
    point_last(tmp_path, tmp_path / 'epoch_1.pth')
    assert resolve_resume(None, str(tmp_path)) is None


def test_latest_without_last_checkpoint_names_the_work_dir_and_the_file(tmp_path):
    with pytest.raises(ResumeError) as err:
        resolve_resume(LATEST, str(tmp_path))
    msg = str(err.value)
    assert f'nothing to resume in work dir {tmp_path}' in msg
    assert osp.join(str(tmp_path), 'last_checkpoint') in msg
    assert '--resume auto' in msg


def test_latest_and_auto_resume_the_file_last_checkpoint_names(tmp_path):
    save(tmp_path / 'epoch_1.pth')
    last = save(tmp_path / 'epoch_2.pth', 1.0)
    point_last(tmp_path, last)
    assert resolve_resume(LATEST, str(tmp_path)) == last
    assert resolve_resume(AUTO, str(tmp_path)) == last


def test_auto_without_a_checkpoint_starts_fresh(tmp_path):
    assert resolve_resume(AUTO, str(tmp_path)) is None
    assert resolve_resume(AUTO, str(tmp_path / 'not_made_yet')) is None


def test_a_path_that_does_not_exist_is_named(tmp_path):
    missing = str(tmp_path / 'epoch_7.pth')
    with pytest.raises(ResumeError, match=f'--resume {missing}: no such file'):
        resolve_resume(missing, str(tmp_path))


def test_an_existing_path_is_resumed(tmp_path):
    path = save(tmp_path / 'anything.pth')
    assert resolve_resume(path, str(tmp_path / 'other_work_dir')) == path


def test_a_truncated_last_checkpoint_names_the_previous_one(tmp_path):
    save(tmp_path / 'epoch_1.pth')
    prev = save(tmp_path / 'epoch_2.pth')
    save(tmp_path / 'epoch_2_student.pth')  # an export, not a checkpoint to resume from
    full = save(tmp_path / 'full.pth')
    last = truncate(full, tmp_path / 'epoch_3.pth')
    point_last(tmp_path, last)
    with pytest.raises(ResumeError) as err:
        resolve_resume(LATEST, str(tmp_path))
    assert str(err.value).startswith(f'{last} is not a readable checkpoint (truncated?)')
    assert str(err.value).endswith(f'Resume from the previous one with --resume {prev}')
    with pytest.raises(ResumeError, match='not a readable checkpoint'):
        resolve_resume(AUTO, str(tmp_path))  # auto does not start over on a broken file


def test_an_unreadable_previous_one_is_skipped(tmp_path):
    first = save(tmp_path / 'epoch_1.pth')
    full = save(tmp_path / 'full.pth')
    truncate(full, tmp_path / 'epoch_2.pth')
    last = truncate(full, tmp_path / 'epoch_3.pth')
    with pytest.raises(ResumeError) as err:
        resolve_resume(last, str(tmp_path))
    assert str(err.value).endswith(f'Resume from the previous one with --resume {first}')


def test_no_readable_previous_one(tmp_path):
    full = save(tmp_path / 'full.pth')
    last = truncate(full, tmp_path / 'iter_500.pth')
    (tmp_path / 'iter_250.pth').write_bytes(b'')  # killed before anything was written
    with pytest.raises(ResumeError, match='no readable earlier checkpoint'):
        resolve_resume(last, str(tmp_path))


def test_checkpoint_problem_reads_zip_crcs(tmp_path):
    path = save(tmp_path / 'a.pth', 3.0)
    assert checkpoint_problem(path) is None
    data = bytearray(open(path, 'rb').read())
    # flip a byte inside the tensor data (all 3.0 = 0x40400000): length kept, CRC broken
    at = bytes(data).index(b'\x00\x00\x40\x40' * 16)
    data[at + 2] ^= 0xFF
    open(path, 'wb').write(bytes(data))
    assert 'CRC' in checkpoint_problem(path)
    assert checkpoint_problem(str(tmp_path / 'missing.pth')) is not None


def test_previous_checkpoints_sorted_by_number(tmp_path):
    for name in ('epoch_9.pth', 'epoch_10.pth', 'epoch_2.pth', 'epoch_10_student.pth',
                 'best_coco_bbox_mAP_epoch_9.pth', 'last_checkpoint'):
        (tmp_path / name).write_bytes(b'x')
    names = [osp.basename(p) for p in previous_checkpoints(str(tmp_path))]
    assert names == ['epoch_10.pth', 'epoch_9.pth', 'epoch_2.pth']
    before = [osp.basename(p) for p in
              previous_checkpoints(str(tmp_path), before=str(tmp_path / 'epoch_10.pth'))]
    assert before == ['epoch_9.pth', 'epoch_2.pth']


def test_a_moved_work_dir_resumes_its_own_copy(tmp_path):
    path = save(tmp_path / 'epoch_4.pth')
    point_last(tmp_path, '/somewhere/else/epoch_4.pth')
    assert resolve_resume(LATEST, str(tmp_path)) == path
    (tmp_path / 'epoch_4.pth').unlink()
    with pytest.raises(ResumeError, match='names /somewhere/else/epoch_4.pth, which does not'):
        resolve_resume(LATEST, str(tmp_path))


def run_train(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, osp.join(REPO, 'tools/train.py'), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_cli_resume_with_nothing_to_resume_fails_before_training(tmp_path, tiny_config):
    cfg = tiny_config(DISTILL)
    work = tmp_path / 'work'
    proc = run_train(cfg, '--work-dir', str(work), '--resume')
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f'error: --resume: nothing to resume in work dir {work}: ' \
           f'{work}/last_checkpoint does not exist' in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr
    missing = str(tmp_path / 'nope.pth')
    proc = run_train(cfg, '--work-dir', str(work), '--resume', missing)
    assert proc.returncode == 1
    assert f'error: --resume {missing}: no such file' in proc.stderr
