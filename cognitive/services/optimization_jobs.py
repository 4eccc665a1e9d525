"""Optimization runs as durable jobs: the job kind, and performing a claimed run.

A claimed run scores the baseline (the active version) on val, compiles with the optimizer on
train, scores the result on val and records it as a new version, promoted when it wins.

Semantics worth knowing:
- The val split is held out: optimizers only see train examples, and the baseline and the
  result are both scored on val. A dataset without val examples holds out every fifth train
  example (at least one) instead, and the run's log says so.
- The budget (`max_lm_calls`, `max_cost`) limits the optimizer's own LM calls. When it is
  reached the optimizer is stopped, the best candidate it scored so far is kept (the baseline
  when it scored none), and the run still scores that result on val and succeeds, with a log
  line. Baseline and final evaluations are never cut short, so the run's total LM calls are
  the budget plus two passes over the val split.
- Promotion: the result becomes the active version when its val score beats the baseline
  (scored on the same split in the same run) by more than `DSPEX_PROMOTION_MARGIN`; otherwise
  it is kept for a person to promote.
- A cancelled run writes no version; the program is active again at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Max
from django.utils import timezone

from cognitive.engine.errors import transient_failure
from cognitive.engine.language_models import lm_for
from cognitive.engine.optimization import (
    STOP_CANCELLED,
    STOP_LOST,
    STOP_TRANSIENT,
    Budget,
    OptimizationMeter,
    OptimizationSession,
    OptimizationStopped,
    PipelineProgram,
    planned_trials,
    to_examples,
)
from cognitive.engine.optimizers import split_optimizer_config
from cognitive.errors import ApplicationError, InvalidInput, RateLimited, RetryableError
from cognitive.models import (
    Dataset,
    Example,
    ExampleSplit,
    OptimizationRun,
    OptimizationRunStatus,
    Program,
    ProgramStatus,
    ProgramVersion,
    VersionChangeKind,
    VersionSource,
)
from cognitive.selectors import lm_by_name
from cognitive.services.jobs import core
from cognitive.services.jobs.kinds import JobKind
from cognitive.services.jobs.leases import hold
from cognitive.services.pipelines import language_model_of, pipeline_compile, pipeline_modules
from cognitive.services.retrieval import corpus_retriever
from cognitive.services.versions import switch_active_version
from cognitive.telemetry import recorder
from cognitive.telemetry.logs import job_context

logger = logging.getLogger(__name__)

ACTIVE = (OptimizationRunStatus.QUEUED, OptimizationRunStatus.RUNNING)
MAX_LOG_LINES = 500


def log_line(text: str) -> str:
    return f"{timezone.now().isoformat(timespec='seconds')} {text}"


def program_done_optimizing(program_id: Any) -> None:
    """`optimizing → active` unless another run of the program is still queued or running (call in a transaction)."""
    program = Program.objects.select_for_update().get(pk=program_id)
    if program.status != ProgramStatus.OPTIMIZING:
        return
    if OptimizationRun.objects.filter(program_id=program_id, status__in=ACTIVE).exists():
        return
    program.finish_optimization()
    program.save()


class OptimizationRunJobs(JobKind):
    label = "optimization run"
    model = OptimizationRun
    task = "workers.optimization.run"
    pending = OptimizationRunStatus.QUEUED
    running = OptimizationRunStatus.RUNNING
    failed = OptimizationRunStatus.FAILED
    cancelled = OptimizationRunStatus.CANCELLED

    def lease_seconds(self) -> float:
        return settings.DSPEX_OPTIMIZATION_LEASE_SECONDS

    def renew_every(self) -> float:
        # The renewal also writes progress, which the admin and the API show as it goes.
        return max(min(settings.DSPEX_OPTIMIZATION_PROGRESS_SECONDS, self.lease_seconds() / 3), 0.05)

    def claim_values(self) -> dict[str, Any]:
        return {"progress": {"phase": "starting"}, "trials": []}

    def note_values(self, job: Any, text: str) -> dict[str, Any]:
        return {"log": [*job.log, log_line(text)][-MAX_LOG_LINES:]}

    def finishing(self) -> Any:
        return transaction.atomic()

    def after_final(self, job: Any) -> None:
        program_done_optimizing(job.program_id)

    def finished(self, job: Any, status: str, values: Mapping[str, Any]) -> None:
        trials = len(values.get("trials") or ())
        transaction.on_commit(
            lambda: recorder.optimization_finished(optimizer=job.optimizer_type, status=status, trials=trials)
        )


OPTIMIZATION_RUNS = OptimizationRunJobs()


def split_examples(dataset: Dataset) -> tuple[list[Example], list[Example], str | None]:
    """(train, val, note): val is held out from train when the dataset has none."""
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
    train, val, note = split_examples(run.dataset)
    init_kwargs, compile_kwargs = split_optimizer_config(run.optimizer_type, run.optimizer_config)
    session = OptimizationSession(
        program=PipelineProgram(
            plan, prepared, retrieve=corpus_retriever(program.owner_id), thread_exit=close_old_connections
        ),
        lm=lm_for(language_model_of(first_module)),
        optimizer_type=run.optimizer_type,
        init_kwargs=init_kwargs,
        compile_kwargs=compile_kwargs,
        metric=run.metric,
        metric_config=run.metric_config,
        train=to_examples([(e.inputs, e.outputs) for e in train]),
        val=to_examples([(e.inputs, e.outputs) for e in val]),
        meter=meter,
        language_models=lm_by_name,
        num_threads=settings.DSPEX_OPTIMIZATION_THREADS,
    )
    notes = [note] if note else []
    notes.append(f"train {len(train)} examples, val {len(val)} examples")
    return session, notes


def optimization_execute(*, run_id: Any, worker_id: str | None = None) -> str:
    """Claim the run and optimize once. Safe to call any number of times for the same id."""
    run = core.claim(OPTIMIZATION_RUNS, run_id, worker_id=worker_id or core.worker_identity())
    if run is None:
        return "not-claimed"
    started, outcome = time.monotonic(), "interrupted"
    with job_context(optimization_run_id=run.pk, program=run.program_id, attempt=run.attempt):
        try:
            outcome = _optimize(run)
        finally:
            core.log_outcome(
                OPTIMIZATION_RUNS, run, outcome, started=started,
                subject=f"program {run.program_id} ({run.optimizer_type})",
            )
    return outcome


def _optimize(run: OptimizationRun) -> str:
    meter = OptimizationMeter(Budget(max_lm_calls=run.budget.get("max_lm_calls"), max_cost=run.budget.get("max_cost")))
    try:
        session, notes = _build_session(run, meter)
    except Exception as exc:
        if not isinstance(exc, ApplicationError):
            logger.exception("optimization %s could not start", run.pk)
        return core.record_failure(OPTIMIZATION_RUNS, run, exc)
    planned = planned_trials(run.optimizer_type, session.init_kwargs, session.compile_kwargs)

    def progress() -> dict[str, Any]:
        return {**meter.snapshot(), "trials_planned": planned, "updated_at": timezone.now().isoformat()}

    # The lease keeper is the only writer to the row until the optimizer is done.
    with hold(
        OPTIMIZATION_RUNS, run,
        values=lambda: {"progress": progress(), "trials": meter.trial_list()},
        on_lost=lambda cancelled: meter.stop(STOP_CANCELLED if cancelled else STOP_LOST),
    ):
        try:
            baseline = session.evaluate(session.program, "baseline")
            outcome = session.compile()
            final = session.evaluate(outcome.program, "final")
        except OptimizationStopped as stop:
            if stop.reason != STOP_TRANSIENT:
                return "cancelled" if stop.reason == STOP_CANCELLED else "lost-claim"
            failure = meter.transient
        except Exception as exc:
            failure: BaseException | None = exc
        else:
            failure = None
        last_progress = progress()
    if meter.stop_reason == STOP_LOST:
        return "lost-claim"
    if meter.stop_reason == STOP_TRANSIENT:
        # Even where DSPy swallowed it (an example scored 0), the scores are not to be trusted.
        failure = meter.transient
    if failure is not None:
        return _record_failure(run, failure, meter)
    if not meter.trials:
        meter.add_trial(final, phase="final")
    return _complete(
        run, baseline=baseline, final=final, state=outcome.program.state(), notes=[*notes, *outcome.notes],
        progress={**last_progress, **meter.snapshot(), "phase": "done"}, trials=meter.trial_list(),
    )


def _record_failure(run: OptimizationRun, failure: BaseException, meter: OptimizationMeter) -> str:
    """Transient LM failures retry (rate limits snooze) under the job core's rules; the rest fail with the progress."""
    transient = failure if isinstance(failure, RetryableError) else transient_failure(failure)
    goes_again = transient is not None and (isinstance(transient, RateLimited) or run.attempt < run.max_attempts)
    if not goes_again and not isinstance(failure, ApplicationError | RetryableError):
        logger.exception("optimization %s failed", run.pk, exc_info=failure)
    return core.record_failure(
        OPTIMIZATION_RUNS, run, transient or failure, trials=meter.trial_list(),
        progress={**meter.snapshot(), "phase": "queued" if goes_again else "failed"},
    )


def _complete(
    run: OptimizationRun, *, baseline: float, final: float, state: dict[str, Any], notes: list[str],
    progress: dict[str, Any], trials: list[dict[str, Any]],
) -> str:
    margin = settings.DSPEX_PROMOTION_MARGIN
    promote = final > baseline + margin
    with transaction.atomic():
        program = Program.objects.select_for_update().get(pk=run.program_id)
        latest = ProgramVersion.objects.filter(program=program).aggregate(latest=Max("number"))["latest"] or 0
        number = latest + 1
        verdict = (
            f"val {run.metric}: baseline {baseline:.3f} → optimized {final:.3f} (margin {margin:g}); "
            + (f"promoted v{number}" if promote else f"kept v{number} for review (not promoted)")
        )
        completed = core.complete(
            OPTIMIZATION_RUNS, run, status=OptimizationRunStatus.SUCCEEDED, outcome="succeeded",
            baseline_score=baseline, final_score=final, promoted=promote, progress=progress, trials=trials,
            log=[*run.log, *(log_line(note) for note in notes), log_line(verdict)][-MAX_LOG_LINES:],
        )
        if not completed:
            return "lost-claim"
        version = ProgramVersion.objects.create(
            program=program, number=number, state=state, source=VersionSource.OPTIMIZATION,
            scores={
                "metric": run.metric, "split": "val", "baseline": round(baseline, 4), "final": round(final, 4),
                "optimizer": run.optimizer_type, "optimization_run": str(run.pk),
            },
        )
        OptimizationRun.objects.filter(pk=run.pk).update(result_version=version)
        if promote:
            switch_active_version(program, version, kind=VersionChangeKind.PROMOTE, run=run, reason=verdict)
        program_done_optimizing(program.pk)
    return "succeeded"
