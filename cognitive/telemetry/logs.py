"""Job-aware logs: every line logged while a job runs carries its id, program and attempt.

The job core sets `job_context` around an attempt; `JobContextFilter` (on the console handler)
copies it onto each record, for the text format and for `LOG_FORMAT=json` alike.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_job: ContextVar[dict[str, Any] | None] = ContextVar("dspex_job_log_context", default=None)

JOB_FIELDS = ("execution_id", "optimization_run_id", "program", "attempt")


@contextlib.contextmanager
def job_context(**fields: Any) -> Iterator[None]:
    token = _job.set({key: "" if value is None else str(value) for key, value in fields.items()})
    try:
        yield
    finally:
        _job.reset(token)


def current_job() -> dict[str, Any]:
    return dict(_job.get() or {})


class JobContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _job.get() or {}
        for key in JOB_FIELDS:
            setattr(record, key, fields.get(key, ""))
        parts = [f"{key}={fields[key]}" for key in JOB_FIELDS if fields.get(key)]
        record.job = f" [{' '.join(parts)}]" if parts else ""
        return True


class JobJsonFormatter(JsonFormatter):
    """One JSON object a line; the job fields only when there is a job."""

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record.pop("job", None)
        for key in JOB_FIELDS:
            if not log_record.get(key):
                log_record.pop(key, None)
