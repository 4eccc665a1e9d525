"""Batches: many runs of one program, counted by status and cancelled together."""

from __future__ import annotations

from django.db.models import Count

from cognitive.errors import Conflict
from cognitive.models import Batch, ExecutionStatus
from cognitive.services.execution_jobs import execution_cancel


def batch_counts(batch: Batch) -> dict[str, int]:
    counts = {status: 0 for status in ExecutionStatus.values}
    for row in batch.executions.values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def batch_cancel(*, batch: Batch) -> dict[str, int]:
    """Cancel every execution of the batch that has not finished; finished ones keep their result."""
    open_statuses = [ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
    for execution in batch.executions.filter(status__in=open_statuses):
        try:
            execution_cancel(execution=execution)
        except Conflict:
            continue  # it finished while we were cancelling
    return batch_counts(batch)
