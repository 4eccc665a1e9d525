from __future__ import annotations

from django.utils import timezone

from cognitive.errors import Conflict
from cognitive.models import Execution, ExecutionStatus


def execution_cancel(*, execution: Execution) -> Execution:
    """Cancel a pending or running execution. A running one stops at its next step boundary.

    A conditional update rather than a transition on the loaded row: a worker may be changing
    the row at the same moment, and whichever write lands first must win cleanly.
    """
    cancellable = [ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
    now = timezone.now()
    changed = Execution.objects.filter(pk=execution.pk, status__in=cancellable).update(
        status=ExecutionStatus.CANCELLED, finished_at=now, lease_expires_at=None, updated_at=now
    )
    execution.refresh_from_db()
    if not changed:
        raise Conflict(
            f"cannot cancel an execution that is {execution.status}",
            {"state": execution.status, "transition": "cancel"},
        )
    return execution
