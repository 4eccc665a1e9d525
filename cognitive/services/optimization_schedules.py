"""Scheduled re-optimization: a program's cron schedule is a django-celery-beat PeriodicTask.

Beat calls `workers.optimization.scheduled` with the schedule id; a run starts only when the
dataset changed (`Dataset.changed_at`) after the last scheduled run started, and promotes only
under the usual rule (see services/optimization_jobs.py).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.validators import crontab_validator

from cognitive.errors import ApplicationError, Conflict, InvalidInput
from cognitive.models import Dataset, OptimizationSchedule, Program, ProgramStatus
from cognitive.services.optimization_requests import check_optimization_request, optimization_start

TASK_NAME = "workers.optimization.scheduled"


def _crontab(cron: Any) -> CrontabSchedule:
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise InvalidInput(
            "cron must have five fields: minute hour day-of-month month day-of-week (e.g. '0 3 * * *')",
            {"field": "cron"},
        )
    try:
        crontab_validator(cron)
    except ValidationError as exc:
        raise InvalidInput(f"cron: {' '.join(exc.messages)}", {"field": "cron"}) from None
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week,
        timezone="UTC",
    )
    return schedule


def optimization_schedule_set(
    *, program: Program, owner: AbstractBaseUser, cron: str, optimizer: Any, dataset: Dataset, metric: str,
    config: dict[str, Any] | None = None, metric_config: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None, enabled: bool = True,
) -> OptimizationSchedule:
    """Create or replace the program's schedule and its beat task (editable in the admin afterwards)."""
    if program.status == ProgramStatus.ARCHIVED:
        raise Conflict("an archived program cannot be scheduled for optimization", {"state": program.status})
    _, optimizer_type, config, metric_config, budget = check_optimization_request(
        program=program, optimizer=optimizer, dataset=dataset, metric=metric, config=config,
        metric_config=metric_config, budget=budget,
    )
    with transaction.atomic():
        crontab = _crontab(cron)
        schedule, _ = OptimizationSchedule.objects.update_or_create(
            program=program,
            defaults={
                "owner": owner, "cron": cron, "optimizer_type": optimizer_type, "optimizer_config": config,
                "dataset": dataset, "metric": metric, "metric_config": metric_config, "budget": budget,
                "enabled": enabled,
            },
        )
        task, _ = PeriodicTask.objects.update_or_create(
            name=f"optimize program {program.pk}",
            defaults={
                "task": TASK_NAME, "crontab": crontab, "interval": None, "args": json.dumps([str(schedule.pk)]),
                "enabled": enabled, "description": f"re-optimize '{program.name}' when its dataset changed",
            },
        )
        if schedule.periodic_task_id != task.pk:
            OptimizationSchedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
            schedule.periodic_task = task
    return schedule


def optimization_schedule_delete(*, schedule: OptimizationSchedule) -> None:
    with transaction.atomic():
        if schedule.periodic_task_id:
            PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
        schedule.delete()


def _note(schedule: OptimizationSchedule, outcome: str, **fields: Any) -> str:
    OptimizationSchedule.objects.filter(pk=schedule.pk).update(
        last_checked_at=timezone.now(), last_outcome=outcome[:200], **fields
    )
    return outcome.split(":", 1)[0]


def optimization_scheduled(*, schedule_id: Any) -> str:
    """One beat tick: `started`, `unchanged`, `disabled`, `skipped: <why>`, or `missing`."""
    schedule = (
        OptimizationSchedule.objects.select_related("program", "program__owner", "dataset", "owner")
        .filter(pk=schedule_id)
        .first()
    )
    if schedule is None:
        return "missing"
    if not schedule.enabled:
        return _note(schedule, "disabled")
    changed_at = schedule.dataset.changed_at
    if changed_at is None or (schedule.last_started_at is not None and changed_at <= schedule.last_started_at):
        return _note(schedule, "unchanged: the dataset has not changed since the last scheduled run")
    started = timezone.now()
    try:
        run = optimization_start(
            program=schedule.program, owner=schedule.owner, optimizer=schedule.optimizer_type,
            dataset=schedule.dataset, metric=schedule.metric, config=schedule.optimizer_config,
            metric_config=schedule.metric_config, budget=schedule.budget, schedule=schedule,
        )
    except ApplicationError as exc:
        return _note(schedule, f"skipped: {exc.message}")
    return _note(schedule, f"started: run {run.pk}", last_started_at=started)
