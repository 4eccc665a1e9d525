"""One lease keeper per process: a single side thread renews the lease of every job this process holds.

A run holds its row with `hold(kind, job)`; the keeper renews each held row every
`kind.renew_every()` seconds with a conditional UPDATE (the same attempt, still running).
When that changes nothing the claim is gone (cancelled, or reaped as a presumed-dead worker):
the holder's `lost` event is set and its `on_lost` callback runs, so the work can stop.
Rows of one kind that are due together are renewed in one statement.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import close_old_connections, connections, router
from django.utils import timezone

from cognitive.services.jobs.core import is_cancelled, renew
from cognitive.services.jobs.kinds import JobKind

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Claim:
    kind: JobKind
    job: Any
    every: float
    # Extra columns written with each renewal (an optimization's progress), if any.
    values: Callable[[], dict[str, Any]] | None = None
    # Called on the keeper's thread with True when the row was cancelled, False when it was reaped.
    on_lost: Callable[[bool], None] | None = None
    lost: threading.Event = field(default_factory=threading.Event)
    due: float = 0.0


class LeaseKeeper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._claims: set[Claim] = set()
        self._pid = 0
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(
        self, kind: JobKind, job: Any, *, values: Callable[[], dict[str, Any]] | None = None,
        on_lost: Callable[[bool], None] | None = None, every: float | None = None,
    ) -> Iterator[Claim]:
        claim = Claim(kind, job, every if every is not None else kind.renew_every(), values, on_lost)
        claim.due = time.monotonic() + claim.every
        with self._lock:
            self._ensure_thread()
            self._claims.add(claim)
            self._wake.notify()
        try:
            yield claim
        finally:
            with self._lock:
                self._claims.discard(claim)

    def _ensure_thread(self) -> None:
        # A forked child (a prefork worker) inherits the object but not the thread.
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="dspex-lease-keeper", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._claims:
                    self._wake.wait()
                now = time.monotonic()
                due = [claim for claim in self._claims if claim.due <= now]
                if not due:
                    self._wake.wait(min(claim.due for claim in self._claims) - now)
                    continue
                for claim in due:
                    claim.due = now + claim.every
            try:
                self._renew(due)
            except Exception:
                logger.warning("lease renewal failed; will retry", exc_info=True)
                close_old_connections()

    def _renew(self, due: list[Claim]) -> None:
        close_old_connections()  # this thread's connection may have idled past its age or broken
        plain: dict[type[JobKind], list[Claim]] = {}
        for claim in due:
            if claim.values is not None:
                if not renew(claim.kind, claim.job, **claim.values()):
                    self._lose(claim)
            else:
                plain.setdefault(type(claim.kind), []).append(claim)
        for claims in plain.values():
            held = _renew_together(claims[0].kind, [claim.job for claim in claims])
            for claim in claims:
                if claim.job.pk not in held:
                    self._lose(claim)

    def _lose(self, claim: Claim) -> None:
        with self._lock:
            self._claims.discard(claim)
        claim.lost.set()
        if claim.on_lost is not None:
            claim.on_lost(is_cancelled(claim.kind, claim.job.pk))


def _renew_together(kind: JobKind, jobs: list[Any]) -> set[Any]:
    """One UPDATE for many held rows; returns the ids still held (running, at the attempt we claimed)."""
    if len(jobs) == 1:
        return {jobs[0].pk} if renew(kind, jobs[0]) else set()
    model = kind.model
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk, attempt, status = (model._meta.get_field(name) for name in ("id", "attempt", "status"))
    now = timezone.now()
    lease = model._meta.get_field("lease_expires_at")
    updated = model._meta.get_field("updated_at")
    pairs = " OR ".join([f"({quote(pk.column)} = %s AND {quote(attempt.column)} = %s)"] * len(jobs))
    params: list[Any] = [
        lease.get_db_prep_save(now + timedelta(seconds=kind.lease_seconds()), connection),
        updated.get_db_prep_save(now, connection),
        kind.running,
    ]
    for job in jobs:
        params += [pk.get_db_prep_value(job.pk, connection), job.attempt]
    # Only quoted identifiers from the model's metadata are spliced in; every value is a parameter.
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {quote(lease.column)} = %s, {quote(updated.column)} = %s "  # noqa: S608
        f"WHERE {quote(status.column)} = %s AND ({pairs}) RETURNING {quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {pk.to_python(row[0]) for row in rows}


lease_keeper = LeaseKeeper()
hold = lease_keeper.hold
