"""The engine: the only package that imports DSPy.

DSPy configures its own logger on import: level INFO, not propagating, written straight to
`sys.stderr`. In a Celery worker stderr is a logger at WARNING level, so every DSPy INFO line
came out as `WARNING/MainProcess`. Here, once, before any engine module uses DSPy, its logger
is handed back to the project's logging configuration (settings.LOGGING: WARNING).
"""

from __future__ import annotations

import logging

import dspy  # noqa: F401 (imported first so that its logger setup is done before it is undone)
from django.conf import settings

_DSPY_HANDLER = "dspy_handler"


def _dspy_logs_follow_settings() -> None:
    logger = logging.getLogger("dspy")
    for handler in list(logger.handlers):
        if handler.get_name() == _DSPY_HANDLER:
            logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(settings.LOGGING.get("loggers", {}).get("dspy", {}).get("level", "WARNING"))


_dspy_logs_follow_settings()
