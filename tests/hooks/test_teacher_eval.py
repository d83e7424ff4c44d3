"""TeacherEvalHook without a validation loop warns and does nothing."""
from types import SimpleNamespace

from mmengine.logging import MessageHub, MMLogger

from densekd.hooks import TeacherEvalHook


def test_no_validation_configured_is_not_an_error(caplog):
    logger = MMLogger.get_instance('densekd_test_teacher_eval')
    runner = SimpleNamespace(val_loop=None, iter=0, logger=logger,
                             message_hub=MessageHub.get_instance('densekd_test_teacher_eval'))
    TeacherEvalHook().before_train(runner)
    assert runner.message_hub.get_info('teacher_metrics') is None
