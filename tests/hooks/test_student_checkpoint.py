"""StudentCheckpointHook removes the student exports whose checkpoint mmengine removed,
including those exported by an earlier (resumed) process."""
from densekd.hooks.student_checkpoint import StudentCheckpointHook


def test_exports_without_their_checkpoint_are_removed(tmp_path):
    kept = ['epoch_2.pth', 'epoch_2_student.pth', 'iter_500.pth', 'iter_500_student.pth',
            'best_coco_bbox_mAP_epoch_2.pth', 'best_coco_bbox_mAP_epoch_2_student.pth',
            'mine_student.pth']  # not a name mmengine saves under: never touched
    removed = ['epoch_1_student.pth', 'iter_250_student.pth',
               'best_coco_bbox_mAP_epoch_1_student.pth']
    for name in kept + removed:
        (tmp_path / name).write_bytes(b'x')
    StudentCheckpointHook._remove_orphans(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
