"""Executions as durable jobs: the job kind, and claiming and performing rows (one id or several a message)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction

from cognitive.engine.tracing import RunStopped
from cognitive.errors import ApplicationError, RetryableError
from cognitive.lru import LRUCache
from cognitive.models import Execution, ExecutionStatus, Program
from cognitive.services.jobs import core
from cognitive.services.jobs.kinds import JobKind
from cognitive.services.jobs.leases import Claim, hold
from cognitive.services.run_perform import execution_perform
from cognitive.services.usage import record_execution_final
from cognitive.telemetry import recorder, spans
from cognitive.telemetry.logs import job_context

logger = logging.getLogger(__name__)


class ExecutionJobs(JobKind):
    label = "execution"
    model = Execution
    task = "workers.executions.run"
    task_many = "workers.executions.run_many"
    pending = ExecutionStatus.PENDING
    running = ExecutionStatus.RUNNING
    failed = ExecutionStatus.FAILED
    cancelled = ExecutionStatus.CANCELLED
    scope: ClassVar[dict[str, Any]] = {"parent__isnull": True}  # steps are rows of their parent's job
    priority_field = "priority"
    claimed_fields = (
        "id", "owner", "program", "version", "module", "batch", "input", "context", "status", "priority",
        "attempt", "max_attempts", "attempts", "worker_id", "started_at", "lease_expires_at", "trace_context",
    )

    def lease_seconds(self) -> float:
        return settings.DSPEX_EXECUTION_LEASE_SECONDS

    def finishing(self) -> Any:
        # The final state and the usage rollups it adds to commit together.
        return transaction.atomic()

    def finished(self, job: Any, status: str, values: Mapping[str, Any]) -> None:
        record_execution_final(job, status, values)
        duration_ms = values.get("duration_ms")
        program_id = job.program_id
        transaction.on_commit(lambda: recorder.execution_finished(
            program=program_name(program_id) if program_id else None, status=status, duration_ms=duration_ms,
        ))


EXECUTIONS = ExecutionJobs()
_program_names: LRUCache[str] = LRUCache(1024)


def program_name(program_id: Any) -> str | None:
    """For metric labels; a rename shows from the next process."""
    name = _program_names.get(program_id)
    if name is None:
        name = Program.objects.filter(pk=program_id).values_list("name", flat=True).first()
        if name is not None:
            _program_names.put(program_id, name)
    return name


def executions_process(*, execution_ids: list[Any], worker_id: str | None = None) -> list[str]:
    """Claim and run each execution in turn (one message carrying several ids).

    Each row is claimed only when its turn comes, so the ones waiting behind it stay `pending`:
    cancellable, and free for another worker if this one dies. The runs share one read of
    their program's modules (`loaded`), so an edit made meanwhile applies from the next message.
    """
    loaded: dict[Any, Any] = {}
    return [execution_process(execution_id=i, worker_id=worker_id, loaded=loaded) for i in execution_ids]


def execution_process(
    *, execution_id: Any, worker_id: str | None = None, loaded: dict[Any, Any] | None = None,
    deadline: float | None = None,
) -> str:
    """Claim the execution and run it once. Safe to call any number of times for the same id.

    Past `deadline` (a `time.monotonic()` value) the run stops at its next LM call and goes back
    to the queue for a worker ("handed-off"), as a synchronous request's run does.
    """
    execution = core.claim(EXECUTIONS, execution_id, worker_id=worker_id or core.worker_identity())
    if execution is None:
        return "not-claimed"
    started = time.monotonic()
    subject = f"program {execution.program_id}" if execution.program_id else f"module {execution.module_id}"
    outcome = "interrupted"
    with job_context(
        execution_id=execution.pk, program=execution.program_id or "", attempt=execution.attempt
    ), spans.execution_span(execution):
        try:
            outcome = _perform(execution, loaded, deadline)
        finally:
            core.log_outcome(EXECUTIONS, execution, outcome, started=started, subject=subject)
    return outcome


class _StopCheck:
    """Whether a running execution must stop: its claim is gone, it was cancelled, or it is out of time.

    Asked between stages and before every LM call, so the database is asked at most every
    DSPEX_CANCEL_CHECK_SECONDS; the lease keeper's renewals notice a lost claim in between.
    """

    def __init__(self, execution: Execution, claim: Claim, deadline: float | None) -> None:
        self.execution = execution
        self.claim = claim
        self.deadline = deadline
        self.checked = time.monotonic()
        self.out_of_time = False

    def __call__(self) -> bool:
        if self.claim.lost.is_set():
            return True
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            self.out_of_time = True
            return True
        if now - self.checked < settings.DSPEX_CANCEL_CHECK_SECONDS:
            return False
        self.checked = now
        if core.is_cancelled(EXECUTIONS, self.execution.pk):
            self.claim.lost.set()
            return True
        return False


def _perform(execution: Execution, loaded: dict[Any, Any] | None, deadline: float | None) -> str:
    with hold(EXECUTIONS, execution) as claim:
        should_stop = _StopCheck(execution, claim, deadline)
        try:
            result = execution_perform(execution=execution, should_stop=should_stop, loaded=loaded)
        except SoftTimeLimitExceeded:
            # The message's time is up: this run goes back to be retried, and the rest of a
            # multi-id message stays pending for the sweeper rather than starting out of time.
            core.record_failure(EXECUTIONS, execution, RetryableError("the run exceeded the task's time limit"))
            raise
        except RunStopped:
            if should_stop.out_of_time:
                return _hand_off(execution)
            return "cancelled" if core.is_cancelled(EXECUTIONS, execution.pk) else "lost-claim"
        except Exception as exc:
            if not isinstance(exc, ApplicationError | RetryableError):
                logger.exception("execution %s failed unexpectedly", execution.pk)
            return core.record_failure(EXECUTIONS, execution, exc)
    done = core.complete(
        EXECUTIONS, execution, status=ExecutionStatus.COMPLETED, output=result.output, trace=result.trace,
        metrics=result.metrics, duration_ms=result.duration_ms,
    )
    return "completed" if done else "lost-claim"


def _hand_off(execution: Execution) -> str:
    """Out of the caller's time: back to pending for a worker at once. The attempt counts, so its steps stay apart."""
    error = {"type": "DeadlineExceeded", "message": "the synchronous run ran out of time; a worker finishes it"}
    changed = core.requeue(EXECUTIONS, execution, delay=0, outcome="handed-off", error=error, refund_attempt=False)
    return "handed-off" if changed else "lost-claim"


def execution_run_inline(*, execution: Execution) -> Execution:
    """Run a pending execution in this process (the synchronous API path) under the same rules.

    Past DSPEX_SYNC_RUN_DEADLINE_SECONDS the run is handed to a worker and the row comes back pending.
    """
    deadline = time.monotonic() + settings.DSPEX_SYNC_RUN_DEADLINE_SECONDS
    execution_process(execution_id=execution.pk, worker_id=f"inline:{core.worker_identity()}", deadline=deadline)
    execution.refresh_from_db()
    return execution


def execution_cancel(*, execution: Execution) -> Execution:
    """A pending execution never runs; a running one stops at its next step boundary."""
    core.cancel(EXECUTIONS, execution.pk)
    execution.refresh_from_db()
    return execution
