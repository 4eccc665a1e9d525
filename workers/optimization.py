"""Optimization tasks: load the row by id, call the service. Everything that matters is in the row."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from cognitive.services.optimization import optimization_execute
from cognitive.services.optimization_schedules import optimization_scheduled


@shared_task(
    name="workers.optimization.run",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.DSPEX_OPTIMIZATION_SOFT_TIME_LIMIT,
    time_limit=settings.DSPEX_OPTIMIZATION_TIME_LIMIT,
)
def run_optimization(run_id: str) -> str:
    return optimization_execute(run_id=run_id)


@shared_task(name="workers.optimization.scheduled", ignore_result=True, soft_time_limit=60, time_limit=90)
def scheduled_optimization(schedule_id: str) -> str:
    """Beat's entry point for a program's schedule: starts a run only if the dataset changed."""
    return optimization_scheduled(schedule_id=schedule_id)
