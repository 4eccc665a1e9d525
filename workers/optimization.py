"""Optimization tasks: take an id, call the service. Everything that matters is in the row."""

from __future__ import annotations

from django.conf import settings

from cognitive.services.optimization_jobs import optimization_execute
from cognitive.services.optimization_schedules import optimization_scheduled
from workers.policy import job_task, maintenance_task


@job_task(
    soft_time_limit=settings.DSPEX_OPTIMIZATION_SOFT_TIME_LIMIT, time_limit=settings.DSPEX_OPTIMIZATION_TIME_LIMIT
)
def run(run_id: str) -> str:
    return optimization_execute(run_id=run_id)


@maintenance_task
def scheduled(schedule_id: str) -> str:
    """Beat's entry point for a program's schedule: starts a run only if the dataset changed."""
    return optimization_scheduled(schedule_id=schedule_id)
