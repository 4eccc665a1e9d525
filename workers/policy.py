"""Task policy in one place: every task is declared through one of these decorators.

A task's name is its module and function (`workers.executions.run`); settings route queues by
that prefix. Retries are not Celery's: a job task records a failure in its row (the job core
decides to retry, snooze or fail) and beat's sweeper re-publishes what is due.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task


def _name(function: Callable[..., Any]) -> str:
    return f"{function.__module__}.{function.__name__}"


def job_task(*, soft_time_limit: int, time_limit: int) -> Callable[[Callable[..., Any]], Any]:
    """A task that performs durable jobs: acknowledged only when done, redelivered if its worker dies."""

    def decorate(function: Callable[..., Any]) -> Any:
        return shared_task(
            name=_name(function), acks_late=True, reject_on_worker_lost=True, ignore_result=True,
            soft_time_limit=soft_time_limit, time_limit=time_limit,
        )(function)

    return decorate


def maintenance_task(function: Callable[..., Any]) -> Any:
    """A short periodic task (beat): safe to lose, since the next tick does the same work."""
    return shared_task(name=_name(function), ignore_result=True, soft_time_limit=60, time_limit=90)(function)
