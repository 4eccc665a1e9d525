"""A configuration error is a message to the operator, not a crash: one line naming what to set."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from django.core.exceptions import ImproperlyConfigured


def configuration_error_line(exc: BaseException) -> str:
    return f"DSPex is not configured: {exc} (see the Configuration table in README.md)"


def _report_configuration_errors(
    exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None
) -> None:
    if isinstance(exc, ImproperlyConfigured):
        print(configuration_error_line(exc), file=sys.stderr)
        return
    _previous_hook(exc_type, exc, traceback)


_previous_hook = sys.excepthook


def report_configuration_errors_in_one_line() -> None:
    """Every entry point (manage.py, celery, gunicorn's import of the WSGI app) ends with one line, not a traceback.

    Settings raise ImproperlyConfigured so that code and tests can catch it; only an error nobody
    caught reaches this hook, and then the traceback points into settings.py and says nothing more.
    """
    global _previous_hook
    if sys.excepthook is not _report_configuration_errors:
        _previous_hook = sys.excepthook
        sys.excepthook = _report_configuration_errors


# gunicorn stops (instead of respawning workers forever) when a worker exits with this code.
_APP_LOAD_ERROR = 4


@contextmanager
def exit_on_configuration_error() -> Iterator[None]:
    """For the WSGI/ASGI modules: servers log a worker's exception with its traceback, so exit first."""
    try:
        yield
    except ImproperlyConfigured as exc:
        print(configuration_error_line(exc), file=sys.stderr)
        raise SystemExit(_APP_LOAD_ERROR) from None
