"""Beat's safety nets for every kind: the sweeper re-publishes lost messages, the reaper frees dead workers' rows."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from cognitive.services.jobs.core import attempts_with
from cognitive.services.jobs.kinds import JobKind
from cognitive.services.jobs.publishing import publish
from cognitive.services.row_updates import update_where
from cognitive.telemetry.recorder import count_attempt

WORKER_LOST = {"type": "WorkerLost", "message": "the worker stopped heartbeating (lease expired)"}


def sweep(kind: JobKind, *, limit: int = 500) -> int:
    """Re-publish due pending rows whose message may have been lost (broker restart, crash before publish)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS)
    fields = ["pk", kind.priority_field] if kind.priority_field else ["pk"]
    due = (
        kind.model.objects.filter(status=kind.pending, **kind.scope)
        .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
        .filter(Q(published_at__isnull=True) | Q(published_at__lte=stale))
        .order_by(*fields[1:], "created_at")
        .values_list(*fields)[:limit]
    )
    count = 0
    for row in due:
        publish(kind, row[0], priority=row[1] if kind.priority_field else None)
        count += 1
    return count


def reap(kind: JobKind, *, limit: int = 500) -> int:
    """Running rows whose lease expired lost their worker: back to pending, or failed when out of attempts."""
    now = timezone.now()
    expired = kind.model.objects.filter(status=kind.running, lease_expires_at__lt=now, **kind.scope)[:limit]
    reaped = 0
    for job in expired:
        where = {"id": job.pk, "status": kind.running, "attempt": job.attempt}
        attempts = attempts_with(job, "worker-lost", WORKER_LOST)
        with kind.finishing():
            if job.attempt >= job.max_attempts:
                changed = update_where(kind.model, where=where, values={
                    "status": kind.failed, "error": {**WORKER_LOST, "attempts_exhausted": True},
                    "attempts": attempts, "finished_at": now, "lease_expires_at": None, "updated_at": now,
                    **kind.note_values(job, "worker lost; no attempts left"),
                })
                if changed:
                    kind.after_final(job)
                    kind.finished(job, kind.failed, {})
            else:
                changed = update_where(kind.model, where=where, values={
                    "status": kind.pending, "run_after": None, "lease_expires_at": None, "worker_id": "",
                    "attempts": attempts, "updated_at": now,
                    **kind.note_values(job, f"worker lost during attempt {job.attempt}; queued again"),
                })
                if changed:
                    # After the commit of `finishing()`, so the row is claimable when the message arrives.
                    transaction.on_commit(lambda job=job: publish(kind, job.pk, priority=kind.priority_of(job)))
        if changed:
            count_attempt(kind.label, "worker-lost")
        reaped += changed
    return reaped
