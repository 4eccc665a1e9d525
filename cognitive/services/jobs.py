"""The durable job platform: the Execution row is the job (see DESIGN.md "Durability").

Every state change here is one conditional UPDATE that names the state (and the attempt) it
expects, so a duplicate delivery, a zombie worker or a racing cancel changes nothing.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Self

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from cognitive.errors import ApplicationError, RateLimited, RetryableError
from cognitive.models import Execution, ExecutionStatus
from cognitive.services.row_updates import Add, DueBy, update_returning, update_where

logger = logging.getLogger(__name__)

PENDING, RUNNING = ExecutionStatus.PENDING, ExecutionStatus.RUNNING


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def lease_seconds() -> int:
    return settings.DSPEX_EXECUTION_LEASE_SECONDS


# -- publishing ---------------------------------------------------------------------------


def publish_execution(
    execution_id: Any, *, priority: int = 5, countdown: float | None = None, stamp: bool = True
) -> None:
    """Send the id to the executions queue. Losing this message is survivable: the sweeper re-sends.

    `stamp=False` when the row was written with `published_at` already (new rows), saving a write.
    """
    from workers.executions import run_execution

    try:
        run_execution.apply_async(args=[str(execution_id)], priority=priority, countdown=countdown)
        if stamp:
            Execution.objects.filter(pk=execution_id).update(published_at=timezone.now())
    except Exception:
        logger.warning("could not publish execution %s; the sweeper will", execution_id, exc_info=True)


# A batch goes out as at least this many messages (one worker's default thread count), so a
# worker can keep that many runs in flight; beyond it, ids share messages.
MIN_MESSAGES_PER_BATCH = 32


def ids_per_message(count: int) -> int:
    """How many ids one message carries when `count` rows are published together.

    Celery's own cost per message (receive, track, acknowledge) is several times the CPU of a
    fast run, so a large batch shares messages; a small one still gets a message per run.
    """
    return max(1, min(settings.DSPEX_IDS_PER_MESSAGE_MAX, count // MIN_MESSAGES_PER_BATCH))


def publish_executions(execution_ids: list[Any], *, priority: int = 5) -> None:
    """Publish rows written with `published_at` already set; a lost message is re-sent by the sweeper."""
    from workers.executions import run_executions

    size = ids_per_message(len(execution_ids))
    if size == 1:
        for execution_id in execution_ids:
            publish_execution(execution_id, priority=priority, stamp=False)
        return
    for start in range(0, len(execution_ids), size):
        chunk = [str(execution_id) for execution_id in execution_ids[start:start + size]]
        try:
            run_executions.apply_async(
                args=[chunk], priority=priority,
                soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT * len(chunk),
                time_limit=settings.CELERY_TASK_TIME_LIMIT * len(chunk),
            )
        except Exception:
            logger.warning("could not publish %d executions; the sweeper will", len(chunk), exc_info=True)


def publish_on_commit(execution_ids: list[Any], *, priority: int = 5) -> None:
    transaction.on_commit(lambda: publish_executions(execution_ids, priority=priority))


# -- claim, heartbeat, finish ---------------------------------------------------------------


# What the worker reads from a claimed row; the rest loads on first access.
_CLAIMED_FIELDS = (
    "id", "owner", "program", "version", "module", "batch", "input", "context", "status", "priority",
    "attempt", "max_attempts", "attempts", "worker_id", "started_at", "lease_expires_at",
)


def execution_claim(*, execution_id: Any, worker_id: str) -> Execution | None:
    """`pending → running`, attempt + 1, with a lease. Returns None when there was nothing to claim."""
    now = timezone.now()
    return update_returning(
        Execution,
        where={"id": execution_id, "status": PENDING, "run_after": DueBy(now)},
        values={
            "status": RUNNING,
            "attempt": Add(1),
            "lease_expires_at": now + timedelta(seconds=lease_seconds()),
            "worker_id": worker_id[:200],
            "started_at": now,
            "updated_at": now,
        },
        returning=_CLAIMED_FIELDS,
    )


def _update_claimed(execution: Execution, **values: Any) -> bool:
    """Change the row only while this attempt still holds it (not cancelled, reaped or finished)."""
    where = {"id": execution.pk, "status": RUNNING, "attempt": execution.attempt}
    return bool(update_where(Execution, where=where, values={**values, "updated_at": timezone.now()}))


def execution_heartbeat(execution: Execution) -> bool:
    """Extend the lease; False means the claim is gone (cancelled, or reaped as a presumed-dead worker)."""
    now = timezone.now()
    return _update_claimed(execution, lease_expires_at=now + timedelta(seconds=lease_seconds()))


def execution_is_cancelled(execution_id: Any) -> bool:
    return Execution.objects.filter(pk=execution_id, status=ExecutionStatus.CANCELLED).exists()


def attempts_with(job: Any, outcome: str, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The job's attempt history plus this attempt (any row with attempt, worker_id, started_at, attempts)."""
    record = {
        "attempt": job.attempt,
        "worker": job.worker_id,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "ended_at": timezone.now().isoformat(),
        "outcome": outcome,
    }
    if error:
        record["error"] = error
    return [*job.attempts, record]


def execution_complete(*, execution: Execution, output: Any, trace: list, metrics: dict, duration_ms: int) -> bool:
    return _update_claimed(
        execution,
        status=ExecutionStatus.COMPLETED,
        output=output,
        trace=trace,
        metrics=metrics,
        duration_ms=duration_ms,
        error=None,
        attempts=attempts_with(execution, "completed"),
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def error_payload(exc: BaseException) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc)}
    if isinstance(exc, ApplicationError) and exc.extra:
        payload["extra"] = exc.extra
    return payload


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential with full jitter, never sooner than the server's Retry-After."""
    base = settings.DSPEX_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    delay = random.uniform(base / 2, base)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.DSPEX_RETRY_MAX_SECONDS)


def _requeue(execution: Execution, *, delay: float, outcome: str, error: dict, refund_attempt: bool) -> bool:
    changed = _update_claimed(
        execution,
        status=PENDING,
        attempt=Add(-1 if refund_attempt else 0),
        run_after=timezone.now() + timedelta(seconds=delay),
        lease_expires_at=None,
        worker_id="",
        attempts=attempts_with(execution, outcome, error),
        error=error,
    )
    if changed:
        publish_execution(execution.pk, priority=execution.priority, countdown=delay)
    return changed


def _fail(execution: Execution, error: dict[str, Any], outcome: str = "failed") -> bool:
    return _update_claimed(
        execution,
        status=ExecutionStatus.FAILED,
        error=error,
        attempts=attempts_with(execution, outcome, error),
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def execution_record_failure(*, execution: Execution, exc: BaseException) -> str:
    """Decide what a failed attempt means: snooze, retry later, or fail for good. Returns the outcome."""
    error = error_payload(exc)
    if isinstance(exc, RateLimited):
        delay = backoff_seconds(1, exc.retry_after)
        _requeue(execution, delay=delay, outcome="snoozed", error=error, refund_attempt=True)
        return "snoozed"
    if isinstance(exc, RetryableError):
        if execution.attempt >= execution.max_attempts:
            _fail(execution, {**error, "attempts_exhausted": True})
            return "failed"
        _requeue(
            execution, delay=backoff_seconds(execution.attempt, exc.retry_after), outcome="retry", error=error,
            refund_attempt=False,
        )
        return "retry"
    _fail(execution, error)
    return "failed"


# -- running one claimed execution ----------------------------------------------------------


class LeaseKeeper:
    """Calls `beat()` every `interval` seconds from a side thread while the block runs.

    Long jobs use it to renew their lease; `beat()` returning False (the claim is gone) ends it.
    """

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> bool:
        raise NotImplementedError

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self.beat():
                        return
                except Exception:
                    logger.warning("%s failed; will retry", self.name, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()


class _Heartbeat(LeaseKeeper):
    """Keeps an execution's lease alive; `lost` is set when the claim is gone (cancelled or reaped)."""

    def __init__(self, execution: Execution) -> None:
        super().__init__(f"heartbeat-{execution.pk}", max(lease_seconds() / 3, 0.5))
        self.execution = execution
        self.lost = threading.Event()

    def beat(self) -> bool:
        if execution_heartbeat(self.execution):
            return True
        self.lost.set()
        return False


def executions_process(*, execution_ids: list[Any], worker_id: str | None = None) -> list[str]:
    """Claim and run each execution in turn (one message carrying several ids).

    Each row is claimed only when its turn comes, so the ones waiting behind it stay `pending`:
    cancellable, and free for another worker if this one dies. The runs share one read of
    their program's modules (`kits`), so an edit made meanwhile applies from the next message.
    """
    kits: dict[Any, Any] = {}
    return [execution_process(execution_id=i, worker_id=worker_id, kits=kits) for i in execution_ids]


def execution_process(*, execution_id: Any, worker_id: str | None = None, kits: dict[Any, Any] | None = None) -> str:
    """Claim the execution and run it once. Safe to call any number of times for the same id."""
    from cognitive.services.runs import execution_perform

    execution = execution_claim(execution_id=execution_id, worker_id=worker_id or worker_identity())
    if execution is None:
        return "not-claimed"
    with _Heartbeat(execution) as heartbeat:
        should_stop: Callable[[], bool] = lambda: heartbeat.lost.is_set() or execution_is_cancelled(execution.pk)  # noqa: E731
        try:
            result = execution_perform(execution=execution, should_stop=should_stop, kits=kits)
        except SoftTimeLimitExceeded:
            # The message's time is up: this run goes back to be retried, and the rest of a
            # multi-id message stays pending for the sweeper rather than starting out of time.
            execution_record_failure(
                execution=execution, exc=RetryableError("the run exceeded the task's time limit")
            )
            raise
        except Exception as exc:
            if not isinstance(exc, ApplicationError | RetryableError):
                logger.exception("execution %s failed unexpectedly", execution.pk)
            return execution_record_failure(execution=execution, exc=exc)
    done = execution_complete(
        execution=execution,
        output=result.output,
        trace=result.trace,
        metrics=result.metrics,
        duration_ms=result.duration_ms,
    )
    return "completed" if done else "lost-claim"


def execution_run_inline(*, execution: Execution) -> Execution:
    """Run a pending execution in this process (the synchronous API path) under the same rules."""
    execution_process(execution_id=execution.pk, worker_id=f"inline:{worker_identity()}")
    execution.refresh_from_db()
    return execution


# -- sweeper and reaper -----------------------------------------------------------------------


def executions_sweep(*, limit: int = 500) -> int:
    """Re-publish due pending rows whose message may have been lost (broker restart, crash before publish)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS)
    due = (
        Execution.objects.filter(status=PENDING, parent__isnull=True)
        .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
        .filter(Q(published_at__isnull=True) | Q(published_at__lte=stale))
        .order_by("priority", "created_at")
        .values_list("pk", "priority")[:limit]
    )
    count = 0
    for execution_id, priority in due:
        publish_execution(execution_id, priority=priority)
        count += 1
    return count


def executions_reap(*, limit: int = 500) -> int:
    """Running rows whose lease expired lost their worker: back to pending, or failed when out of attempts."""
    now = timezone.now()
    expired = Execution.objects.filter(status=RUNNING, lease_expires_at__lt=now, parent__isnull=True)[:limit]
    reaped = 0
    for execution in expired:
        error = {"type": "WorkerLost", "message": "the worker stopped heartbeating (lease expired)"}
        guard = Execution.objects.filter(
            pk=execution.pk, status=RUNNING, attempt=execution.attempt, lease_expires_at__lt=now
        )
        if execution.attempt >= execution.max_attempts:
            changed = guard.update(
                status=ExecutionStatus.FAILED,
                error={**error, "attempts_exhausted": True},
                attempts=attempts_with(execution, "worker-lost", error),
                finished_at=now,
                lease_expires_at=None,
                updated_at=now,
            )
        else:
            changed = guard.update(
                status=PENDING,
                run_after=None,
                lease_expires_at=None,
                worker_id="",
                attempts=attempts_with(execution, "worker-lost", error),
                updated_at=now,
            )
            if changed:
                publish_execution(execution.pk, priority=execution.priority)
        reaped += changed
    return reaped
