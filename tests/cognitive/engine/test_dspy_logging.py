"""DSPy's log lines follow the project's logging settings instead of DSPy's own stderr handler."""

from __future__ import annotations

import logging

import cognitive.engine  # noqa: F401 (what every engine import runs first)


def test_dspy_info_lines_are_dropped_and_warnings_reach_the_project_handlers(capsys, caplog):
    logger = logging.getLogger("dspy.teleprompt.some_optimizer")

    with caplog.at_level(logging.INFO):  # the root at INFO, as in a worker started with --loglevel=INFO
        logger.info("Bootstrapped 4 full traces after 4 examples")
        logger.warning("a real warning")

    assert capsys.readouterr().err == ""  # DSPy's own handler wrote INFO lines to stderr
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("dspy")] == [
        ("WARNING", "a real warning")
    ]
    dspy_logger = logging.getLogger("dspy")
    assert dspy_logger.propagate and not dspy_logger.handlers and dspy_logger.level == logging.WARNING
