"""Optimization runs: start, cancel, execute (claim → baseline → compile → final → version), reap.

The OptimizationRun row is the job, under the same contract as executions (DESIGN.md
"Durability"): claimed with one conditional UPDATE, heartbeated, completed only while the
claim (status running, same attempt) still holds, and reaped when its worker stops beating.

Semantics worth knowing:
- The val split is held out: optimizers only see train examples, and the baseline (the active
  version) and the result are both scored on val. A dataset without val examples holds out
  every fifth train example (at least one) instead, and the run's log says so.
- The budget (`max_lm_calls`, `max_cost`) limits the optimizer's own LM calls. When it is
  reached the optimizer is stopped, the best candidate it scored so far is kept (the baseline
  when it scored none), and the run still scores that result on val and succeeds, with a log
  line. Baseline and final evaluations are never cut short, so the run's total LM calls are
  the budget plus two passes over the val split.
- Promotion: the result becomes the active version when its val score beats the baseline
  (the active version, scored on the same split in the same run) by more than
  `DSPEX_PROMOTION_MARGIN`; otherwise it is kept for a person to promote.
- A cancelled run writes no version; the program is active again at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from cognitive.engine.errors import transient_failure
from cognitive.engine.language_models import lm_for
from cognitive.engine.metrics import get_metric
from cognitive.engine.optimization import (
    STOP_CANCELLED,
    STOP_LOST,
    Budget,
    OptimizationMeter,
    OptimizationSession,
    OptimizationStopped,
    PipelineProgram,
    planned_trials,
    to_examples,
)
from cognitive.engine.optimizers import split_optimizer_config
from cognitive.engine.validation import check_program_input
from cognitive.errors import ApplicationError, Conflict, InvalidInput, RateLimited, RetryableError
from cognitive.models import (
    ActiveVersionChange,
    Dataset,
    Example,
    ExampleSplit,
    OptimizationRun,
    OptimizationRunStatus,
    OptimizationSchedule,
    Optimizer,
    Program,
    ProgramStatus,
    ProgramVersion,
    VersionChangeKind,
    VersionSource,
)
from cognitive.services.jobs import LeaseKeeper, attempts_with, backoff_seconds, error_payload, worker_identity
from cognitive.services.optimization_budget import optimization_budget
from cognitive.services.pipelines import language_model_of, pipeline_compile, pipeline_modules

logger = logging.getLogger(__name__)

QUEUED, RUNNING = OptimizationRunStatus.QUEUED, OptimizationRunStatus.RUNNING
MAX_LOG_LINES = 500


def lease_seconds() -> int:
    return int(getattr(settings, "DSPEX_OPTIMIZATION_LEASE_SECONDS", 60))


def progress_seconds() -> float:
    return float(getattr(settings, "DSPEX_OPTIMIZATION_PROGRESS_SECONDS", 1.0))


def promotion_margin() -> float:
    return float(getattr(settings, "DSPEX_PROMOTION_MARGIN", 0.0))


def _line(text: str) -> str:
    return f"{timezone.now().isoformat(timespec='seconds')} {text}"


# --------------------------------------------------------------------------- validation


def _check_budget(budget: Any) -> dict[str, Any]:
    return optimization_budget(budget)


def _resolve_optimizer(optimizer: Any, config: Any) -> tuple[Optimizer | None, str, dict[str, Any]]:
    if isinstance(optimizer, Optimizer):
        merged = {**optimizer.config, **(config or {})}
        return optimizer, optimizer.type, merged
    if not isinstance(optimizer, str):
        raise InvalidInput("optimizer must be an optimizer type name", {"field": "optimizer"})
    if config is None:
        config = {}
    return None, optimizer, dict(config) if isinstance(config, dict) else config


def _split_examples(dataset: Dataset) -> tuple[list[Example], list[Example], str | None]:
    examples = list(dataset.examples.order_by("created_at", "id"))
    train = [e for e in examples if e.split == ExampleSplit.TRAIN]
    val = [e for e in examples if e.split == ExampleSplit.VAL]
    if not train:
        raise InvalidInput(f"dataset '{dataset.name}' has no train examples", {"field": "dataset"})
    if val:
        return train, val, None
    if len(train) < 2:
        raise InvalidInput(
            f"dataset '{dataset.name}' has no val examples and too few train examples to hold some out",
            {"field": "dataset"},
        )
    held = [e for i, e in enumerate(train) if i % 5 == 4] or [train[-1]]
    kept = [e for e in train if e not in held]
    return kept, held, f"the dataset has no val split: held out {len(held)} of {len(train)} train examples as val"


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


def _check_request(
    *, program: Program, optimizer: Any, dataset: Dataset, metric: str, config: Any, metric_config: Any,
    budget: Any,
) -> tuple[Optimizer | None, str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    optimizer_row, optimizer_type, config = _resolve_optimizer(optimizer, config)
    split_optimizer_config(optimizer_type, config)
    if metric_config is not None and not isinstance(metric_config, dict):
        raise InvalidInput("metric_config must be a JSON object", {"field": "metric_config"})
    get_metric(metric, config=metric_config or {})
    budget = _check_budget(budget)
    if dataset.program_id != program.pk:
        raise InvalidInput(f"dataset '{dataset.name}' belongs to another program", {"field": "dataset"})
    _split_examples(dataset)
    return optimizer_row, optimizer_type, config, dict(metric_config or {}), budget


# --------------------------------------------------------------------------- start and cancel


def publish_run(run_id: Any, *, countdown: float | None = None) -> None:
    """Send the id to the optimization queue; the sweeper re-sends a lost one."""
    from workers.optimization import run_optimization

    try:
        run_optimization.apply_async(args=[str(run_id)], countdown=countdown)
        # Stamped with when it becomes due, so the sweeper does not re-send it during a backoff.
        due = timezone.now() + timedelta(seconds=countdown or 0)
        OptimizationRun.objects.filter(pk=run_id).update(published_at=due)
    except Exception:
        logger.warning("could not publish optimization run %s; the sweeper will", run_id, exc_info=True)


def optimization_start(
    *, program: Program, owner: AbstractBaseUser, optimizer: Any, dataset: Dataset, metric: str,
    config: dict[str, Any] | None = None, metric_config: dict[str, Any] | None = None,
    budget: dict[str, Any] | None = None, schedule: OptimizationSchedule | None = None,
) -> OptimizationRun:
    """Queue an optimization: only of an active program, one at a time (409 otherwise)."""
    if program.status != ProgramStatus.ACTIVE:
        raise Conflict(_busy_message(program), {"state": program.status, **_active_run(program)})
    optimizer_row, optimizer_type, config, metric_config, budget = _check_request(
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
                schedule=schedule, max_attempts=int(getattr(settings, "DSPEX_OPTIMIZATION_MAX_ATTEMPTS", 3)),
                progress={"phase": "queued"}, log=[_line(f"queued: {optimizer_type} on '{dataset.name}', {metric}")],
            )
            transaction.on_commit(lambda: publish_run(run.pk))
    except IntegrityError:
        program.refresh_from_db()
        raise Conflict(_busy_message(program), {"state": program.status, **_active_run(program)}) from None
    program.refresh_from_db()
    return run


def _active_run(program: Program) -> dict[str, Any]:
    active = OptimizationRun.objects.filter(program=program, status__in=[QUEUED, RUNNING]).first()
    return {"optimization_run": str(active.pk)} if active else {}


def _busy_message(program: Program) -> str:
    if program.status == ProgramStatus.OPTIMIZING:
        return "this program is already being optimized; wait for that run or cancel it"
    return f"only an active program can be optimized; this one is {program.status}"


def _program_done_optimizing(program_id: Any) -> None:
    """`optimizing → active` unless another run of the program is still queued or running."""
    program = Program.objects.select_for_update().get(pk=program_id)
    if program.status != ProgramStatus.OPTIMIZING:
        return
    if OptimizationRun.objects.filter(program_id=program_id, status__in=[QUEUED, RUNNING]).exists():
        return
    program.finish_optimization()
    program.save()


def optimization_cancel(*, run: OptimizationRun, reason: str = "cancelled") -> OptimizationRun:
    """A queued run never runs; a running one stops at its next LM call and writes nothing."""
    now = timezone.now()
    with transaction.atomic():
        current = OptimizationRun.objects.select_for_update().get(pk=run.pk)
        if current.status not in (QUEUED, RUNNING):
            raise Conflict(f"cannot cancel an optimization run that is {current.status}", {"state": current.status})

        OptimizationRun.objects.filter(pk=run.pk, status=current.status).update(
            status=OptimizationRunStatus.CANCELLED,
            finished_at=now,
            lease_expires_at=None,
            log=[*current.log, _line(reason)][-MAX_LOG_LINES:],
            attempts=attempts_with(current, "cancelled") if current.status == RUNNING else current.attempts,
            progress={**current.progress, "phase": "cancelled"},
            updated_at=now,
        )
        _program_done_optimizing(current.program_id)
    run.refresh_from_db()
    return run


# --------------------------------------------------------------------------- claim and finish


def optimization_claim(*, run_id: Any, worker_id: str) -> OptimizationRun | None:
    now = timezone.now()
    claimed = OptimizationRun.objects.filter(pk=run_id, status=QUEUED).update(
        status=RUNNING,
        attempt=F("attempt") + 1,
        lease_expires_at=now + timedelta(seconds=lease_seconds()),
        worker_id=worker_id[:200],
        started_at=now,
        progress={"phase": "starting"},
        trials=[],
        updated_at=now,
    )
    if not claimed:
        return None
    related = ("program", "program__owner", "program__active_version", "dataset")
    return OptimizationRun.objects.select_related(*related).get(pk=run_id)


def _claimed(run: OptimizationRun) -> Any:
    return OptimizationRun.objects.filter(pk=run.pk, status=RUNNING, attempt=run.attempt)


def _fail(run: OptimizationRun, exc: BaseException, *, meter: OptimizationMeter | None = None) -> str:
    error = error_payload(exc)
    now = timezone.now()
    fields: dict[str, Any] = {}
    if meter is not None:
        fields = {"progress": {**meter.snapshot(), "phase": "failed"}, "trials": meter.trial_list()}
    with transaction.atomic():
        changed = _claimed(run).update(
            status=OptimizationRunStatus.FAILED,
            error=error,
            attempts=attempts_with(run, "failed", error),
            log=[*run.log, _line(f"failed: {error['type']}: {error['message']}")][-MAX_LOG_LINES:],
            finished_at=now,
            lease_expires_at=None,
            updated_at=now,
            **fields,
        )
        if changed:
            _program_done_optimizing(run.program_id)
    return "failed" if changed else "lost-claim"


def _retry_later(run: OptimizationRun, exc: RetryableError, *, meter: OptimizationMeter) -> str:
    """The durability contract for runs too: transient errors back off and retry, rate limits snooze."""
    snoozed = isinstance(exc, RateLimited)
    delay = backoff_seconds(1 if snoozed else run.attempt, exc.retry_after)
    error = error_payload(exc)
    outcome = "snoozed" if snoozed else "retry"
    now = timezone.now()
    changed = _claimed(run).update(
        status=QUEUED,
        attempt=F("attempt") - 1 if snoozed else F("attempt"),
        error=error,
        attempts=attempts_with(run, outcome, error),
        log=[*run.log, _line(f"{outcome} in {delay:.0f} s after {error['type']}: {error['message']}")][-MAX_LOG_LINES:],
        progress={**meter.snapshot(), "phase": "queued"},
        lease_expires_at=None,
        worker_id="",
        updated_at=now,
    )
    if not changed:
        return "lost-claim"
    publish_run(run.pk, countdown=delay)
    return outcome


class _Monitor(LeaseKeeper):
    """From a side thread: writes progress, extends the lease, and stops the run when the claim is gone."""

    def __init__(self, run: OptimizationRun, meter: OptimizationMeter, planned: int | None) -> None:
        super().__init__(f"optimization-{run.pk}", max(min(progress_seconds(), lease_seconds() / 3), 0.05))
        self.run = run
        self.meter = meter
        self.planned = planned

    def progress(self) -> dict[str, Any]:
        return {**self.meter.snapshot(), "trials_planned": self.planned, "updated_at": timezone.now().isoformat()}

    def beat(self) -> bool:
        now = timezone.now()
        changed = _claimed(self.run).update(
            progress=self.progress(),
            trials=self.meter.trial_list(),
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            updated_at=now,
        )
        if changed:
            return True
        cancelled = OptimizationRun.objects.filter(pk=self.run.pk, status=OptimizationRunStatus.CANCELLED).exists()
        self.meter.stop(STOP_CANCELLED if cancelled else STOP_LOST)
        return False


def _build_session(run: OptimizationRun, meter: OptimizationMeter) -> tuple[OptimizationSession, list[str]]:
    program = run.program
    if run.dataset is None:
        raise InvalidInput("the run's dataset was deleted", {"field": "dataset"})
    plan = pipeline_compile(owner=program.owner, pipeline=program.pipeline)
    state = program.active_version.state if program.active_version is not None else None
    prepared, rows = pipeline_modules(plan=plan, owner=program.owner, state=state)
    if not prepared:
        raise InvalidInput("the program has no module steps to optimize", {"field": "program"})
    first_module = next(rows[step.module] for step in plan.steps() if step.kind == "module" and step.module in rows)
    train, val, note = _split_examples(run.dataset)
    init_kwargs, compile_kwargs = split_optimizer_config(run.optimizer_type, run.optimizer_config)
    from cognitive.services.runs import _retriever

    session = OptimizationSession(
        program=PipelineProgram(plan, prepared, retrieve=_retriever(program.owner), thread_exit=close_old_connections),
        lm=lm_for(language_model_of(first_module)),
        optimizer_type=run.optimizer_type,
        init_kwargs=init_kwargs,
        compile_kwargs=compile_kwargs,
        metric=run.metric,
        metric_config=run.metric_config,
        train=to_examples([(e.inputs, e.outputs) for e in train]),
        val=to_examples([(e.inputs, e.outputs) for e in val]),
        meter=meter,
        num_threads=int(getattr(settings, "DSPEX_OPTIMIZATION_THREADS", 4)),
    )
    notes = [note] if note else []
    notes.append(f"train {len(train)} examples, val {len(val)} examples")
    return session, notes


def optimization_execute(*, run_id: Any, worker_id: str | None = None) -> str:
    """Claim the run and optimize once. Safe to call any number of times for the same id."""
    run = optimization_claim(run_id=run_id, worker_id=worker_id or worker_identity())
    if run is None:
        return "not-claimed"
    budget = Budget(max_lm_calls=run.budget.get("max_lm_calls"), max_cost=run.budget.get("max_cost"))
    meter = OptimizationMeter(budget)
    try:
        session, notes = _build_session(run, meter)
    except Exception as exc:
        if not isinstance(exc, ApplicationError):
            logger.exception("optimization %s could not start", run.pk)
        return _fail(run, exc)
    planned = planned_trials(run.optimizer_type, session.init_kwargs, session.compile_kwargs)
    # The monitor thread is the only one writing to the database until the optimizer is done.
    with _Monitor(run, meter, planned) as monitor:
        try:
            baseline = session.evaluate(session.program, "baseline")
            outcome = session.compile()
            final = session.evaluate(outcome.program, "final")
        except OptimizationStopped as stop:
            return "cancelled" if stop.reason == STOP_CANCELLED else "lost-claim"
        except Exception as exc:
            failure: BaseException | None = exc
        else:
            failure = None
        progress = monitor.progress()
    if meter.stop_reason == STOP_LOST:
        return "lost-claim"
    if failure is not None:
        transient = failure if isinstance(failure, RetryableError) else transient_failure(failure)
        if transient is not None and (isinstance(transient, RateLimited) or run.attempt < run.max_attempts):
            return _retry_later(run, transient, meter=meter)
        if not isinstance(failure, ApplicationError):
            logger.exception("optimization %s failed", run.pk, exc_info=failure)
        return _fail(run, failure, meter=meter)
    if not meter.trials:
        meter.add_trial(final, phase="final")
    return _complete(
        run, baseline=baseline, final=final, state=outcome.program.state(), notes=[*notes, *outcome.notes],
        progress={**progress, **meter.snapshot(), "phase": "done"}, trials=meter.trial_list(),
    )


def _complete(
    run: OptimizationRun, *, baseline: float, final: float, state: dict[str, Any], notes: list[str],
    progress: dict[str, Any], trials: list[dict[str, Any]],
) -> str:
    now = timezone.now()
    margin = promotion_margin()
    promote = final > baseline + margin
    with transaction.atomic():
        program = Program.objects.select_for_update().get(pk=run.program_id)
        claimed = _claimed(run).update(
            status=OptimizationRunStatus.SUCCEEDED, finished_at=now, lease_expires_at=None, updated_at=now,
        )
        if not claimed:
            return "lost-claim"
        latest = ProgramVersion.objects.filter(program=program).aggregate(latest=Max("number"))["latest"] or 0
        version = ProgramVersion.objects.create(
            program=program, number=latest + 1, state=state, source=VersionSource.OPTIMIZATION,
            scores={
                "metric": run.metric, "split": "val", "baseline": round(baseline, 4), "final": round(final, 4),
                "optimizer": run.optimizer_type, "optimization_run": str(run.pk),
            },
        )
        verdict = (
            f"val {run.metric}: baseline {baseline:.3f} → optimized {final:.3f} (margin {margin:g}); "
            + (f"promoted v{version.number}" if promote else f"kept v{version.number} for review (not promoted)")
        )
        if promote:
            _switch_active(program, version, kind=VersionChangeKind.PROMOTE, run=run, reason=verdict)
        OptimizationRun.objects.filter(pk=run.pk).update(
            baseline_score=baseline, final_score=final, result_version=version, promoted=promote,
            progress=progress, trials=trials,
            attempts=attempts_with(run, "succeeded"),
            log=[*run.log, *(_line(note) for note in notes), _line(verdict)][-MAX_LOG_LINES:],
        )
        _program_done_optimizing(program.pk)
    return "succeeded"


# --------------------------------------------------------------------------- sweeper and reaper


def optimization_runs_reap(*, limit: int = 100) -> int:
    """Running rows whose lease expired lost their worker: back to queued, or failed when out of attempts."""
    now = timezone.now()
    reaped = 0
    for run in OptimizationRun.objects.filter(status=RUNNING, lease_expires_at__lt=now)[:limit]:
        error = {"type": "WorkerLost", "message": "the worker stopped heartbeating (lease expired)"}
        guard = OptimizationRun.objects.filter(
            pk=run.pk, status=RUNNING, attempt=run.attempt, lease_expires_at__lt=now
        )
        attempts = attempts_with(run, "worker-lost", error)
        with transaction.atomic():
            if run.attempt >= run.max_attempts:
                changed = guard.update(
                    status=OptimizationRunStatus.FAILED, error={**error, "attempts_exhausted": True},
                    attempts=attempts, finished_at=now, lease_expires_at=None, updated_at=now,
                    log=[*run.log, _line("worker lost; no attempts left")][-MAX_LOG_LINES:],
                )
                if changed:
                    _program_done_optimizing(run.program_id)
            else:
                changed = guard.update(
                    status=QUEUED, lease_expires_at=None, worker_id="", attempts=attempts, updated_at=now,
                    log=[*run.log, _line(f"worker lost during attempt {run.attempt}; queued again")][-MAX_LOG_LINES:],
                )
                if changed:
                    transaction.on_commit(lambda run_id=run.pk: publish_run(run_id))
        reaped += changed
    return reaped


def optimization_runs_sweep(*, limit: int = 100) -> int:
    """Re-publish queued runs whose message may have been lost."""
    stale = timezone.now() - timedelta(seconds=settings.DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS)
    due = OptimizationRun.objects.filter(status=QUEUED).filter(
        Q(published_at__isnull=True) | Q(published_at__lte=stale)
    )
    count = 0
    for run_id in due.values_list("pk", flat=True)[:limit]:
        publish_run(run_id)
        count += 1
    return count


# --------------------------------------------------------------------------- promote and roll back


def _switch_active(
    program: Program, version: ProgramVersion | None, *, kind: str, run: OptimizationRun | None = None,
    actor: AbstractBaseUser | None = None, reason: str = "",
) -> None:
    ActiveVersionChange.objects.create(
        program=program, kind=kind, from_version=program.active_version, to_version=version, run=run, actor=actor,
        reason=reason[:300],
    )
    Program.objects.filter(pk=program.pk).update(active_version=version, updated_at=timezone.now())
    program.active_version = version


def program_promote(
    *, program: Program, version: ProgramVersion, actor: AbstractBaseUser | None = None
) -> Program:
    """Make `version` the one runs use. Rollback returns to the version active before it."""
    if version.program_id != program.pk:
        raise InvalidInput("the version belongs to another program", {"field": "version"})
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if locked.status not in (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING):
            raise Conflict(f"cannot promote a version of a program that is {locked.status}", {"state": locked.status})
        if locked.active_version_id != version.pk:
            _switch_active(locked, version, kind=VersionChangeKind.PROMOTE, actor=actor, reason="promoted by hand")
    program.refresh_from_db()
    return program


def previous_active_version(program: Program) -> tuple[bool, ProgramVersion | None]:
    """(found, version): the version active before the current one, replaying promotions and rollbacks."""
    stack: list[Any] = []
    for change in ActiveVersionChange.objects.filter(program=program).order_by("created_at", "id"):
        if change.kind == VersionChangeKind.PROMOTE:
            stack.append(change.from_version_id)
        elif stack:
            stack.pop()
    if not stack:
        return False, None
    target = stack[-1]
    return True, ProgramVersion.objects.filter(pk=target).first() if target else None


def program_rollback(*, program: Program, actor: AbstractBaseUser | None = None) -> Program:
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if locked.status not in (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING):
            raise Conflict(f"cannot roll back a program that is {locked.status}", {"state": locked.status})
        found, target = previous_active_version(locked)
        if not found:
            raise Conflict("there is no earlier active version to roll back to", {"state": locked.status})
        label = f"v{target.number}" if target else "the modules as declared"
        _switch_active(locked, target, kind=VersionChangeKind.ROLLBACK, actor=actor, reason=f"rolled back to {label}")
    program.refresh_from_db()
    return program
