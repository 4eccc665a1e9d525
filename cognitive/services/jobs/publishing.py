"""Sending job ids to the queue, by task name: the services never import the tasks that call them.

Losing a message is survivable (the sweeper re-sends every due row that has not been published
recently), so a broker error is logged and swallowed: the row, already committed, is the job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cognitive.services.jobs.kinds import JobKind

logger = logging.getLogger(__name__)

# A batch goes out as at least this many messages (one worker's default thread count), so a
# worker can keep that many runs in flight; beyond it, ids share messages.
MIN_MESSAGES_PER_BATCH = 32


def send_task(name: str, *, args: list[Any], **options: Any) -> None:
    current_app.send_task(name, args=args, **options)


def ids_per_message(count: int) -> int:
    """How many ids one message carries when `count` rows are published together.

    Celery's own cost per message (receive, track, acknowledge) is several times the CPU of a
    fast run, so a large batch shares messages; a small one still gets a message per run.
    """
    return max(1, min(settings.DSPEX_IDS_PER_MESSAGE_MAX, count // MIN_MESSAGES_PER_BATCH))


def publish(
    kind: JobKind, job_id: Any, *, priority: int | None = None, countdown: float | None = None, stamp: bool = True
) -> None:
    """Send one id. `stamp=False` when the row was written with `published_at` already (new rows)."""
    options: dict[str, Any] = {"countdown": countdown}
    if priority is not None:
        options["priority"] = priority
    try:
        send_task(kind.task, args=[str(job_id)], **options)
        if stamp:
            # Stamped with when it becomes due, so the sweeper does not re-send it during a backoff.
            due = timezone.now() + timedelta(seconds=countdown or 0)
            kind.model.objects.filter(pk=job_id).update(published_at=due)
    except Exception:
        logger.warning("could not publish %s %s; the sweeper will", kind.label, job_id, exc_info=True)


def publish_many(kind: JobKind, job_ids: Sequence[Any], *, priority: int | None = None) -> None:
    """Publish rows written with `published_at` already set, several ids a message when the kind allows."""
    size = ids_per_message(len(job_ids)) if kind.task_many else 1
    if size == 1:
        for job_id in job_ids:
            publish(kind, job_id, priority=priority, stamp=False)
        return
    assert kind.task_many is not None
    for start in range(0, len(job_ids), size):
        chunk = [str(job_id) for job_id in job_ids[start:start + size]]
        try:
            # A message carrying several runs gets the per-run time limits times their number.
            send_task(
                kind.task_many, args=[chunk], priority=priority,
                soft_time_limit=settings.DSPEX_EXECUTION_SOFT_TIME_LIMIT * len(chunk),
                time_limit=settings.DSPEX_EXECUTION_TIME_LIMIT * len(chunk),
            )
        except Exception:
            logger.warning("could not publish %d %ss; the sweeper will", len(chunk), kind.label, exc_info=True)


def publish_on_commit(kind: JobKind, job_ids: Sequence[Any], *, priority: int | None = None) -> None:
    transaction.on_commit(lambda: publish_many(kind, list(job_ids), priority=priority))
