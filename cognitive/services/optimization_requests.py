"""Asking for optimization runs: check a request, start a run (only of an active program, one at a time), cancel it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from cognitive.engine.metrics import get_metric
from cognitive.engine.optimizers import split_optimizer_config
from cognitive.engine.validation import check_program_input
from cognitive.errors import Conflict, InvalidInput
from cognitive.models import (
    Dataset,
    OptimizationRun,
    OptimizationSchedule,
    Optimizer,
    Program,
    ProgramStatus,
)
from cognitive.selectors import lm_by_name
from cognitive.services.jobs import core
from cognitive.services.jobs.publishing import publish
from cognitive.services.optimization_budget import optimization_budget
from cognitive.services.optimization_jobs import ACTIVE, OPTIMIZATION_RUNS, log_line, split_examples
from cognitive.services.pipelines import pipeline_compile


def _resolve_optimizer(optimizer: Any, config: Any) -> tuple[Optimizer | None, str, dict[str, Any]]:
    if isinstance(optimizer, Optimizer):
        merged = {**optimizer.config, **(config or {})}
        return optimizer, optimizer.type, merged
    if not isinstance(optimizer, str):
        raise InvalidInput("optimizer must be an optimizer type name", {"field": "optimizer"})
    if config is None:
        config = {}
    return None, optimizer, dict(config) if isinstance(config, dict) else config


def _check_examples(program: Program, dataset: Dataset) -> None:
    plan = pipeline_compile(owner=program.owner, pipeline=program.pipeline)
    for example in dataset.examples.all().only("id", "inputs"):
        try:
            check_program_input(plan, example.inputs)
        except InvalidInput as exc:
            raise InvalidInput(
                f"example {example.pk} does not fit the program's input: {exc.message}",
                {"field": "dataset", "example": example.pk},
            ) from None


def check_optimization_request(
    *, program: Program, optimizer: Any, dataset: Dataset, metric: str, config: Any, metric_config: Any,
    budget: Any,
) -> tuple[Optimizer | None, str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    optimizer_row, optimizer_type, config = _resolve_optimizer(optimizer, config)
    split_optimizer_config(optimizer_type, config)
    if metric_config is not None and not isinstance(metric_config, dict):
        raise InvalidInput("metric_config must be a JSON object", {"field": "metric_config"})
    get_metric(metric, config=metric_config or {}, language_models=lm_by_name)
    budget = optimization_budget(budget)
    if dataset.program_id != program.pk:
        raise InvalidInput(f"dataset '{dataset.name}' belongs to another program", {"field": "dataset"})
    split_examples(dataset)
    return optimizer_row, optimizer_type, config, dict(metric_config or {}), budget


def optimization_start(
    *, program: Program, owner: AbstractBaseUser, optimizer: Any, dataset: Dataset, metric: str,
    config: dict[str, Any] | None = None, metric_config: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None, schedule: OptimizationSchedule | None = None,
) -> OptimizationRun:
    """Queue an optimization: only of an active program, one at a time (409 otherwise)."""
    if program.status != ProgramStatus.ACTIVE:
        raise Conflict(_busy_message(program), {"state": program.status, **_active_run(program)})
    optimizer_row, optimizer_type, config, metric_config, budget = check_optimization_request(
        program=program, optimizer=optimizer, dataset=dataset, metric=metric, config=config,
        metric_config=metric_config, budget=budget,
    )
    if not program.pipeline:
        raise Conflict("the program has no pipeline steps yet", {"state": program.status})
    _check_examples(program, dataset)
    try:
        with transaction.atomic():
            # The lock serialises concurrent starts; the partial unique constraint is the backstop.
            locked = Program.objects.select_for_update().get(pk=program.pk)
            if locked.status != ProgramStatus.ACTIVE:
                raise Conflict(_busy_message(locked), {"state": locked.status, **_active_run(locked)})
            locked.start_optimization()
            locked.save()
            run = OptimizationRun.objects.create(
                owner=owner, program=locked, optimizer=optimizer_row, optimizer_type=optimizer_type,
                optimizer_config=config, dataset=dataset, metric=metric, metric_config=metric_config, budget=budget,
                schedule=schedule, max_attempts=settings.DSPEX_OPTIMIZATION_MAX_ATTEMPTS,
                progress={"phase": "queued"}, log=[log_line(f"queued: {optimizer_type} on '{dataset.name}', {metric}")],
            )
            transaction.on_commit(lambda: publish(OPTIMIZATION_RUNS, run.pk))
    except IntegrityError:
        program.refresh_from_db()
        raise Conflict(_busy_message(program), {"state": program.status, **_active_run(program)}) from None
    program.refresh_from_db()
    return run


def _active_run(program: Program) -> dict[str, Any]:
    active = OptimizationRun.objects.filter(program=program, status__in=ACTIVE).first()
    return {"optimization_run": str(active.pk)} if active else {}


def _busy_message(program: Program) -> str:
    if program.status == ProgramStatus.OPTIMIZING:
        return "this program is already being optimized; wait for that run or cancel it"
    return f"only an active program can be optimized; this one is {program.status}"


def optimization_cancel(*, run: OptimizationRun, reason: str = "cancelled") -> OptimizationRun:
    """A queued run never runs; a running one stops at its next LM call and writes nothing."""
    progress = OptimizationRun.objects.filter(pk=run.pk).values_list("progress", flat=True).first() or {}
    core.cancel(OPTIMIZATION_RUNS, run.pk, reason=reason, progress={**progress, "phase": "cancelled"})
    run.refresh_from_db()
    return run
