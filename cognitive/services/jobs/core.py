"""The durable job core: the row is the job, for every kind (see docs/architecture.md, "The job core").

Every state change is one conditional UPDATE naming the state (and the attempt) it expects, so
a duplicate delivery, a zombie worker or a racing cancel changes nothing:
- claim:   pending → running, attempt + 1, a lease, the worker's id; None when nothing was claimed;
- finish:  only while this attempt still holds the row (status running, same attempt);
- failure: a rate limit snoozes (pending again, the attempt refunded), a transient error retries
  with backoff until attempts run out, anything else fails; each attempt's outcome is kept;
- cancel:  pending or running → cancelled; a running worker notices when its claim is gone.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from cognitive.errors import ApplicationError, Conflict, RateLimited, RetryableError
from cognitive.services.jobs.kinds import JobKind
from cognitive.services.jobs.publishing import publish
from cognitive.services.row_updates import Add, DueBy, update_returning, update_where
from cognitive.telemetry.recorder import count_attempt

logger = logging.getLogger("dspex.jobs")


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(kind: JobKind, job_id: Any, *, worker_id: str) -> Any | None:
    """`pending → running`, attempt + 1, with a lease. None when there was nothing to claim."""
    now = timezone.now()
    returning = kind.claimed_fields or tuple(field.name for field in kind.model._meta.concrete_fields)
    return update_returning(
        kind.model,
        where={"id": job_id, "status": kind.pending, "run_after": DueBy(now)},
        values={
            "status": kind.running,
            "attempt": Add(1),
            "lease_expires_at": now + timedelta(seconds=kind.lease_seconds()),
            "worker_id": worker_id[:200],
            "started_at": now,
            "updated_at": now,
            **kind.claim_values(),
        },
        returning=returning,
    )


def log_outcome(kind: JobKind, job: Any, outcome: str, *, started: float, subject: str) -> None:
    """One INFO line per attempt, so a worker's log says what it did."""
    logger.info(
        "%s %s %s: %s after %d ms (attempt %d of %d)", kind.label, job.pk, subject, outcome,
        round((time.monotonic() - started) * 1000), job.attempt, job.max_attempts,
    )


def update_claimed(kind: JobKind, job: Any, **values: Any) -> bool:
    """Change the row only while this attempt still holds it (not cancelled, reaped or finished)."""
    where = {"id": job.pk, "status": kind.running, "attempt": job.attempt}
    return bool(update_where(kind.model, where=where, values={**values, "updated_at": timezone.now()}))


def renew(kind: JobKind, job: Any, **values: Any) -> bool:
    """Extend the lease; False means the claim is gone (cancelled, or reaped as a presumed-dead worker)."""
    lease = timezone.now() + timedelta(seconds=kind.lease_seconds())
    return update_claimed(kind, job, lease_expires_at=lease, **values)


def is_cancelled(kind: JobKind, job_id: Any) -> bool:
    return kind.model.objects.filter(pk=job_id, status=kind.cancelled).exists()


def attempts_with(job: Any, outcome: str, error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The job's attempt history plus this attempt."""
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


def error_payload(exc: BaseException) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc)}
    if isinstance(exc, ApplicationError) and exc.extra:
        payload["extra"] = exc.extra
    if getattr(exc, "lm", ""):
        payload["lm"] = exc.lm
    return payload


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Exponential with full jitter, never sooner than the server's Retry-After."""
    base = settings.DSPEX_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    delay = random.uniform(base / 2, base)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, settings.DSPEX_RETRY_MAX_SECONDS)


def complete(kind: JobKind, job: Any, *, status: str, outcome: str = "completed", **values: Any) -> bool:
    """Finish the claimed attempt successfully; False when the claim was already gone."""
    with kind.finishing():
        changed = update_claimed(
            kind, job, status=status, error=None, attempts=attempts_with(job, outcome), finished_at=timezone.now(),
            lease_expires_at=None, **values,
        )
        if changed:
            kind.finished(job, status, values)
    if changed:
        count_attempt(kind.label, "completed")
    return changed


def fail(kind: JobKind, job: Any, error: dict[str, Any], *, outcome: str = "failed", **values: Any) -> bool:
    with kind.finishing():
        changed = update_claimed(
            kind, job, status=kind.failed, error=error, attempts=attempts_with(job, outcome, error),
            finished_at=timezone.now(), lease_expires_at=None,
            **kind.note_values(job, f"{outcome}: {error['type']}: {error['message']}"), **values,
        )
        if changed:
            kind.after_final(job)
            kind.finished(job, kind.failed, values)
    if changed:
        count_attempt(kind.label, "failed")
    return changed


def requeue(
    kind: JobKind, job: Any, *, delay: float, outcome: str, error: dict[str, Any], refund_attempt: bool,
    **values: Any,
) -> bool:
    """Back to pending, due in `delay` seconds, and published for then."""
    note = f"{outcome} in {delay:.0f} s after {error['type']}: {error['message']}"
    changed = update_claimed(
        kind, job, status=kind.pending, attempt=Add(-1 if refund_attempt else 0),
        run_after=timezone.now() + timedelta(seconds=delay), lease_expires_at=None, worker_id="",
        attempts=attempts_with(job, outcome, error), error=error, **kind.note_values(job, note), **values,
    )
    if changed:
        publish(kind, job.pk, priority=kind.priority_of(job), countdown=delay)
        count_attempt(kind.label, outcome, lm=error.get("lm"))
    return changed


def record_failure(kind: JobKind, job: Any, exc: BaseException, **values: Any) -> str:
    """Decide what a failed attempt means: snooze, retry later, or fail for good. Returns the outcome.

    `values` are extra columns written with the outcome (e.g. the progress so far).
    """
    error = error_payload(exc)
    if isinstance(exc, RateLimited):
        changed = requeue(
            kind, job, delay=backoff_seconds(1, exc.retry_after), outcome="snoozed", error=error,
            refund_attempt=True, **values,
        )
        return "snoozed" if changed else "lost-claim"
    if isinstance(exc, RetryableError):
        if job.attempt >= job.max_attempts:
            changed = fail(kind, job, {**error, "attempts_exhausted": True}, **values)
            return "failed" if changed else "lost-claim"
        changed = requeue(
            kind, job, delay=backoff_seconds(job.attempt, exc.retry_after), outcome="retry", error=error,
            refund_attempt=False, **values,
        )
        return "retry" if changed else "lost-claim"
    return "failed" if fail(kind, job, error, **values) else "lost-claim"


def cancel(kind: JobKind, job_id: Any, *, reason: str = "cancelled", **values: Any) -> Any:
    """Pending or running → cancelled; returns the row as it is now. Conflict (409) when it had finished.

    A conditional update rather than a transition on a loaded row: a worker may be changing the
    row at the same moment, and whichever write lands first must win cleanly. A running worker
    sees its claim gone at its next check and stops.
    """
    now = timezone.now()
    with kind.finishing():
        current = kind.model.objects.filter(pk=job_id).first()
        if current is None or current.status not in (kind.pending, kind.running):
            state = getattr(current, "status", None)
            raise Conflict(f"cannot cancel {_a(kind.label)} that is {state}", {"state": state, "transition": "cancel"})
        attempts = attempts_with(current, "cancelled") if current.status == kind.running else current.attempts
        changed = update_where(
            kind.model,
            where={"id": job_id, "status": current.status, "attempt": current.attempt},
            values={
                "status": kind.cancelled, "finished_at": now, "lease_expires_at": None, "attempts": attempts,
                "updated_at": now, **kind.note_values(current, reason), **values,
            },
        )
        if not changed:
            # It moved on meanwhile (claimed, finished or retried): decide again on its new state.
            return cancel(kind, job_id, reason=reason, **values)
        kind.after_final(current)
        kind.finished(current, kind.cancelled, values)
    if current.status == kind.running:
        count_attempt(kind.label, "cancelled")
    return kind.model.objects.get(pk=job_id)


def _a(label: str) -> str:
    return f"an {label}" if label[:1] in "aeiou" else f"a {label}"
