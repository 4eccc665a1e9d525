"""Queued runs and batches: rows written in the request's transaction, ids published on commit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone

from cognitive.engine.validation import check_program_input
from cognitive.errors import Conflict, InvalidInput
from cognitive.models import Batch, Execution, ExecutionStatus, Program
from cognitive.services.common import require_json_object
from cognitive.services.executions import execution_cancel
from cognitive.services.jobs import publish_on_commit


def _check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise InvalidInput("priority must be an integer from 0 (first) to 9 (last)", {"field": "priority"})
    return priority


def program_run_enqueue(
    *,
    program: Program,
    owner: AbstractBaseUser,
    input: dict[str, Any],
    priority: int = 5,
    idempotency_key: str = "",
) -> tuple[Execution, bool]:
    """Queue one run. Returns (execution, created); a repeated Idempotency-Key returns the first one."""
    from cognitive.services.runs import program_require_runnable

    program_require_runnable(program)
    require_json_object(input, "input")
    priority = _check_priority(priority)
    if idempotency_key:
        existing = Execution.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            execution = Execution.objects.create(
                owner=owner,
                program=program,
                version_id=program.active_version_id,
                input=input,
                priority=priority,
                max_attempts=settings.DSPEX_MAX_ATTEMPTS,
                idempotency_key=idempotency_key[:200],
                published_at=timezone.now(),
            )
            publish_on_commit([execution.pk], priority=priority)
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        return Execution.objects.get(owner=owner, idempotency_key=idempotency_key[:200]), False
    return execution, True


def program_run_batch(
    *, program: Program, owner: AbstractBaseUser, inputs: list[Any], priority: int = 5
) -> Batch:
    """Queue one run per input. Every input is checked first: one bad item is a 400 naming it, and nothing is queued."""
    from cognitive.services.runs import program_check_runnable

    plan = program_check_runnable(program)
    priority = _check_priority(priority)
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("inputs must be a non-empty list of JSON objects", {"path": "inputs"})
    if len(inputs) > settings.DSPEX_BATCH_MAX:
        raise InvalidInput(
            f"a batch holds at most {settings.DSPEX_BATCH_MAX} inputs, got {len(inputs)}", {"path": "inputs"}
        )
    for index, item in enumerate(inputs):
        require_json_object(item, f"inputs[{index}]")
        try:
            check_program_input(plan, item)
        except InvalidInput as exc:
            field = exc.extra.get("field")
            path = f"inputs[{index}].{field}" if field else f"inputs[{index}]"
            raise InvalidInput(f"inputs[{index}]: {exc.message}", {**exc.extra, "path": path}) from None
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(owner=owner, program=program, size=len(inputs), priority=priority)
        executions = Execution.objects.bulk_create(
            [
                Execution(
                    owner=owner,
                    program=program,
                    version_id=program.active_version_id,
                    batch=batch,
                    input=item,
                    priority=priority,
                    max_attempts=settings.DSPEX_MAX_ATTEMPTS,
                    published_at=now,
                )
                for item in inputs
            ]
        )
        publish_on_commit([execution.pk for execution in executions], priority=priority)
    return batch


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
