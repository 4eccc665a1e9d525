"""Execution tasks: take ids, call the service. Everything that matters is in the rows."""

from __future__ import annotations

from django.conf import settings

from cognitive.services.execution_jobs import execution_process, executions_process
from workers.policy import job_task

LIMITS = {
    "soft_time_limit": settings.DSPEX_EXECUTION_SOFT_TIME_LIMIT,
    "time_limit": settings.DSPEX_EXECUTION_TIME_LIMIT,
}


@job_task(**LIMITS)
def run(execution_id: str) -> str:
    return execution_process(execution_id=execution_id)


@job_task(**LIMITS)  # a message carrying n ids is published with n times these limits
def run_many(execution_ids: list[str]) -> list[str]:
    return executions_process(execution_ids=execution_ids)
