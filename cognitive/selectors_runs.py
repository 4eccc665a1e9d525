"""Reads over runs: a batch's status and progress, and a run's steps in pipeline order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db import models
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from cognitive.models import Batch, Execution, ExecutionStatus


class BatchStatus(models.TextChoices):
    """A batch's status, derived from its executions' (first rule that holds):

    - `pending`: every execution is waiting; none has started.
    - `running`: some are waiting or running, and at least one has started or finished.
    - `completed`: every execution completed.
    - `partially_failed`: all finished; some completed and some failed.
    - `failed`: all finished; some failed and none completed.
    - `cancelled`: all finished; some were cancelled, none failed (the completed ones keep their output).
    """

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


def batch_status(counts: Mapping[str, int]) -> str:
    """`counts`: executions per ExecutionStatus value."""
    pending, running = counts.get(ExecutionStatus.PENDING, 0), counts.get(ExecutionStatus.RUNNING, 0)
    completed, failed = counts.get(ExecutionStatus.COMPLETED, 0), counts.get(ExecutionStatus.FAILED, 0)
    total = sum(counts.values())
    if pending + running:
        return BatchStatus.PENDING if pending == total else BatchStatus.RUNNING
    if completed == total:
        return BatchStatus.COMPLETED
    if failed:
        return BatchStatus.PARTIALLY_FAILED if completed else BatchStatus.FAILED
    return BatchStatus.CANCELLED


def _count_field(status: str) -> str:
    return f"count_{status}"


def with_batch_counts(queryset: QuerySet[Batch]) -> QuerySet[Batch]:
    """Each batch with `count_<status>` per execution status, in the one query that lists them."""
    return queryset.annotate(
        **{_count_field(s): Count("executions", filter=Q(executions__status=s)) for s in ExecutionStatus.values}
    )


def annotated_counts(batch: Batch) -> dict[str, int] | None:
    """The counts `with_batch_counts` put on the row, or None when it was loaded without them."""
    if not hasattr(batch, _count_field(ExecutionStatus.PENDING)):
        return None
    return {s: getattr(batch, _count_field(s)) for s in ExecutionStatus.values}


def batch_progress(counts: Mapping[str, int], size: int) -> tuple[int, float]:
    """(finished executions, finished / size rounded to 4 places; 1.0 for an empty batch)."""
    done = sum(counts.get(s, 0) for s in FINISHED)
    return done, round(done / size, 4) if size else 1.0


def batch_execution_list(batch: Batch) -> QuerySet[Execution]:
    """The batch's executions (top-level runs), oldest first."""
    return batch.executions.select_related("program", "module", "version").order_by("created_at", "id")


# --------------------------------------------------------------------------- steps in pipeline order


def _step_ids(steps: Any) -> Iterator[str]:
    if not isinstance(steps, list):
        return
    for entry in steps:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("id"), str) and "parallel" not in entry:
            yield entry["id"]
        yield from _step_ids(entry.get("parallel"))
        on_error = entry.get("on_error")
        if isinstance(on_error, dict) and isinstance(on_error.get("compensate"), dict):
            yield from _step_ids([on_error["compensate"]])


def pipeline_step_order(pipeline: Any) -> list[str]:
    """Step ids as the spec declares them: parallel members in their order, a compensation after its step."""
    return list(dict.fromkeys(_step_ids(pipeline.get("steps") if isinstance(pipeline, dict) else None)))


def steps_in_pipeline_order(parent: Execution, queryset: QuerySet[Execution] | None = None) -> QuerySet[Execution]:
    """A run's step executions per attempt, in the order of its program's pipeline.

    Steps run in parallel finish in any order, so creation order is not pipeline order. A step the
    pipeline no longer declares (it was edited since) comes after the declared ones.
    """
    children = parent.children.all() if queryset is None else queryset
    program = parent.program if parent.program_id else None
    order = pipeline_step_order(program.pipeline) if program is not None else []
    position = Case(
        *(When(step_id=step_id, then=Value(index)) for index, step_id in enumerate(order)),
        default=Value(len(order)),
        output_field=IntegerField(),
    )
    return children.annotate(pipeline_position=position).order_by("attempt", "pipeline_position", "created_at")
