"""The engine: the only package that imports DSPy.

DSPy configures its own logger on import: level INFO, not propagating, written straight to
`sys.stderr`. In a Celery worker stderr is a logger at WARNING level, so every DSPy INFO line
came out as `WARNING/MainProcess`. Here, once, before any engine module uses DSPy, its logger
is handed back to the project's logging configuration; the app's ready hook passes the level
settings.LOGGING gives it (the engine reads no settings).
"""

from __future__ import annotations

import logging

import dspy  # noqa: F401 (imported first so that its logger setup is done before it is undone)

_DSPY_HANDLER = "dspy_handler"


def dspy_logs_follow_logging(level: str = "WARNING") -> None:
    logger = logging.getLogger("dspy")
    for handler in list(logger.handlers):
        if handler.get_name() == _DSPY_HANDLER:
            logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(level)


dspy_logs_follow_logging()
