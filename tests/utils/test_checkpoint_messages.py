"""densekd.utils.checkpoint errors: each names the file, says what was expected and what to
fix, and prints as real lines; export_student_checkpoint never overwrites its source."""
import os
import os.path as osp
import traceback

import pytest
import torch
from torch import nn

from densekd.utils.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    export_student_checkpoint,
    extract_state_dict,
    load_checkpoint_file,
    load_weights_strict,
    student_state_dict,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class Tiny(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.bn = nn.BatchNorm2d(width)


def shown(err: BaseException) -> str:
    return ''.join(traceback.format_exception_only(type(err), err))


# -- key mismatch ------------------------------------------------------------------------
def test_mismatch_report_prints_as_lines_and_names_the_config_key(tmp_path):
    path = str(tmp_path / 't.pth')
    wrong = Tiny(width=8).state_dict()  # conv 8 wide, and no BN, and an extra key
    state = {'conv.weight': wrong['conv.weight'], 'conv.bias': wrong['conv.bias'][:4],
             'head.weight': torch.zeros(2)}
    torch.save({'state_dict': state}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights_strict(Tiny(), path, 'teacher')
    # the BN's num_batches_tracked may be absent (as in mmengine), the other 4 entries not
    assert str(err.value).split('\n') == [
        f'teacher checkpoint {path!r} does not match the teacher model:',
        '  missing in checkpoint (4): bn.weight, bn.bias, bn.running_mean, bn.running_var',
        '  not in the model (1): head.weight',
        '  shape mismatch (1): conv.weight: checkpoint (8, 3, 3, 3) vs model (4, 3, 3, 3)',
        '  Check that `model.teacher.config` is the config the checkpoint was trained with '
        '(depth, widths, number of classes).']
    # a traceback shows the lines, not a quoted repr with literal \n (KeyError's str)
    text = shown(err.value)
    assert '\\n' not in text and text.startswith('densekd.utils.checkpoint.'
                                                   'CheckpointMismatchError: teacher checkpoint')
    # callers that caught the former KeyError still do
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_student_mismatch_names_the_student_config_key(tmp_path):
    path = str(tmp_path / 's.pth')
    torch.save({'state_dict': Tiny(width=8).state_dict()}, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_weights_strict(Tiny(), path, 'student')
    assert str(err.value).startswith(f'student checkpoint {path!r} does not match the '
                                     'student model:\n')
    assert 'Check that `model.student.config` is the config' in str(err.value)


def test_no_student_weights_names_the_file_and_what_was_expected(tmp_path):
    with pytest.raises(CheckpointMismatchError) as err:
        student_state_dict({'backbone.w': torch.ones(1)}, 'x/teacher.pth')
    assert str(err.value) == (
        "no `student.` weights in checkpoint 'x/teacher.pth'; expected a densekd "
        'distillation checkpoint (the epoch_N.pth / iter_N.pth of a tools/train.py run)')


# -- missing file ------------------------------------------------------------------------
@pytest.mark.parametrize('role', ['teacher', 'student'])
def test_missing_checkpoint_names_role_path_and_config_key(tmp_path, role):
    path = str(tmp_path / 'nope' / 'epoch_24.pth')
    with pytest.raises(FileNotFoundError) as err:
        load_weights_strict(Tiny(), path, role)
    assert str(err.value) == (
        f'{role} checkpoint {path!r} does not exist (no such file: {path!r}). '
        f'Check `model.{role}.checkpoint` in the config.')


def test_missing_teacher_checkpoint_of_a_distillation_model(det_paths):
    from densekd.models import DistillationModel

    student, teacher = det_paths
    with pytest.raises(FileNotFoundError) as err:
        DistillationModel(student=dict(config=student), components=[],
                          teacher=dict(config=teacher, checkpoint='work_dirs/nope/epoch_24.pth'))
    msg = str(err.value)
    assert msg.startswith("teacher checkpoint 'work_dirs/nope/epoch_24.pth' does not exist")
    assert msg.endswith('Check `model.teacher.checkpoint` in the config.')
    assert osp.abspath('work_dirs/nope/epoch_24.pth') in msg  # relative to the cwd


# -- not a checkpoint --------------------------------------------------------------------
EXPECTED = ("expected a file written by torch.save holding a dict: an mmengine checkpoint "
            "({'state_dict': ..., 'meta': ...}) or a state dict "
            "(torch.save(model.state_dict(), path))")


def test_tensor_file_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / 'tensor.pth')
    torch.save(torch.ones(3), path)  # before: AttributeError: 'Tensor' ... has no 'get'
    with pytest.raises(CheckpointError) as err:
        load_weights_strict(Tiny(), path, 'teacher')
    assert str(err.value) == (
        f'teacher checkpoint {path!r} holds a torch.Tensor, not a checkpoint; {EXPECTED}; '
        'check `model.teacher.checkpoint` in the config.')
    torch.save([torch.ones(1)], path)
    with pytest.raises(CheckpointError, match=r"^checkpoint .* holds a list, not a checkpoint"):
        load_checkpoint_file(path)


def test_empty_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / 'empty.pth'
    path.touch()  # before: a bare EOFError
    with pytest.raises(CheckpointError) as err:
        load_weights_strict(Tiny(), str(path), 'student')
    msg = str(err.value)
    assert msg.startswith(f'student checkpoint {str(path)!r} is empty or truncated (0 bytes, '
                          'EOFError')
    assert msg.endswith(f'{EXPECTED}. Copy or download it again; check '
                        '`model.student.checkpoint` in the config.')


def test_truncated_zip_is_not_a_checkpoint(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'state_dict': Tiny().state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # the zip's central directory is at the end
    with pytest.raises(CheckpointError) as err:
        load_checkpoint_file(str(path))
    msg = str(err.value)
    assert msg.startswith(f'checkpoint {str(path)!r} is a damaged or truncated zip archive')
    assert msg.endswith(f'{EXPECTED}. Copy or download it again.')


def test_state_dict_entry_that_is_not_a_dict(tmp_path):
    with pytest.raises(CheckpointError) as err:
        extract_state_dict({'state_dict': torch.ones(2), 'meta': {}}, 'w.pth')
    assert str(err.value) == (f"checkpoint 'w.pth': its 'state_dict' entry is a Tensor, not a "
                              f'dict of weights; {EXPECTED}.')


# -- export never overwrites its source ----------------------------------------------------
@pytest.fixture
def distill_ckpt(tmp_path):
    path = tmp_path / 'run' / 'epoch_3.pth'
    path.parent.mkdir()
    state = {f'student.{k}': v for k, v in Tiny().state_dict().items()}
    state['components.a.weight'] = torch.ones(2)
    torch.save({'state_dict': state, 'meta': {'epoch': 3}, 'optimizer': {}}, path)
    os.utime(path, (1_000_000_000, 1_000_000_000))  # an mtime no write keeps
    return path


def same_file_spellings(path):
    """The ways to name ``path`` itself as the output: as is, relative, ``..``, a symlink, a
    hard link."""
    link = path.parent / 'link.pth'
    link.symlink_to(path)
    hard = path.parent / 'hard.pth'
    os.link(path, hard)
    return [str(path), osp.relpath(path), str(path.parent / '..' / 'run' / path.name),
            str(link), str(hard)]


def test_export_refuses_to_overwrite_its_source(distill_ckpt):
    before = distill_ckpt.read_bytes()
    for dst in same_file_spellings(distill_ckpt):
        with pytest.raises(CheckpointError) as err:
            export_student_checkpoint(str(distill_ckpt), dst)
        msg = str(err.value)
        assert f'the output {dst!r} is the distillation checkpoint' in msg
        assert 'Give another output path' in msg
        assert f"{str(distill_ckpt.parent / 'epoch_3_student.pth')!r}" in msg  # the default
        assert distill_ckpt.read_bytes() == before
        assert os.stat(distill_ckpt).st_mtime == 1_000_000_000
    assert sorted(p.name for p in distill_ckpt.parent.iterdir()) == [
        'epoch_3.pth', 'hard.pth', 'link.pth']  # no .tmp left behind


def test_export_to_another_path_still_works(distill_ckpt):
    dst = export_student_checkpoint(str(distill_ckpt))
    assert dst == str(distill_ckpt.parent / 'epoch_3_student.pth')
    out = load_checkpoint_file(dst)
    assert sorted(out['state_dict']) == sorted(Tiny().state_dict())
    assert out['meta']['epoch'] == 3
