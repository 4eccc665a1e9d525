"""What differs between kinds of durable job. Everything else is the job core's (see docs/architecture.md).

A kind names its model, its statuses, the task that runs one row (and optionally one that runs
several), and a few hooks. The core writes every state change with one conditional UPDATE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar

from django.db import models


class JobKind:
    label: ClassVar[str]
    model: ClassVar[type[models.Model]]
    task: ClassVar[str]  # the Celery task that takes one id
    task_many: ClassVar[str | None] = None  # one that takes a list of ids, if the kind shares messages
    pending: ClassVar[str]
    running: ClassVar[str] = "running"
    failed: ClassVar[str] = "failed"
    cancelled: ClassVar[str] = "cancelled"
    # Rows the sweeper and the reaper consider (e.g. only top-level executions).
    scope: ClassVar[Mapping[str, Any]] = {}
    priority_field: ClassVar[str | None] = None
    # What a claim loads (the rest is deferred); None loads every field.
    claimed_fields: ClassVar[tuple[str, ...] | None] = None

    def lease_seconds(self) -> float:
        raise NotImplementedError

    def renew_every(self) -> float:
        """How often the lease keeper renews a held row's lease (and writes `renewal_values`)."""
        return max(self.lease_seconds() / 3, 0.5)

    def claim_values(self) -> dict[str, Any]:
        """Extra columns a claim sets (e.g. resetting progress)."""
        return {}

    def note_values(self, job: Any, text: str) -> dict[str, Any]:
        """Extra columns that record `text` on the row (a log line); nothing for kinds without a log."""
        return {}

    def finishing(self) -> contextlib.AbstractContextManager[Any]:
        """Wraps a final transition and `after_final`: a transaction for kinds with side effects."""
        return contextlib.nullcontext()

    def after_final(self, job: Any) -> None:
        """Runs inside `finishing()` after the row became failed or cancelled (not after completion)."""

    def finished(self, job: Any, status: str, values: Mapping[str, Any]) -> None:
        """Runs inside `finishing()` after any final state (completed, failed, cancelled): rollups, metrics.

        `values` are the columns the final update wrote (a completion's output, metrics, duration).
        """

    def priority_of(self, job: Any) -> int | None:
        return getattr(job, self.priority_field) if self.priority_field else None

