from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from cognitive.models.base import TimestampedModel


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


class Execution(ConcurrentTransitionMixin, TimestampedModel):
    """One run of a program or module; steps are child executions. The row is the job."""

    # No single-column indexes on owner, program and module: the composite indexes below start
    # with them, and every index is written again on each status change of a job row.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    program = models.ForeignKey(
        "cognitive.Program", on_delete=models.CASCADE, null=True, blank=True, related_name="executions",
        db_index=False,
    )
    version = models.ForeignKey(
        "cognitive.ProgramVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="executions"
    )
    module = models.ForeignKey(
        "cognitive.Module", on_delete=models.SET_NULL, null=True, blank=True, related_name="executions",
        db_index=False,
    )
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    step_id = models.CharField(max_length=100, blank=True, help_text="the pipeline step this child ran")
    input = models.JSONField(default=dict)
    context = models.JSONField(default=dict, blank=True, help_text="call options of a module execute: lm, temperature")
    output = models.JSONField(null=True, blank=True)
    trace = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="tokens, cost, latency")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status = FSMField(default=ExecutionStatus.PENDING, choices=ExecutionStatus.choices, protected=True)
    error = models.JSONField(null=True, blank=True)
    # Job bookkeeping (see docs/architecture.md, "The job core").
    priority = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(0), MaxValueValidator(9)])
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    attempts = models.JSONField(default=list, blank=True, help_text="one record per attempt, with its error")
    run_after = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    batch = models.ForeignKey(
        "cognitive.Batch", on_delete=models.CASCADE, null=True, blank=True, related_name="executions"
    )
    published_at = models.DateTimeField(null=True, blank=True, help_text="last time its id was sent to the queue")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The W3C traceparent of the request that asked for the run, so its spans hang under it.
    trace_context = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["program", "status", "-created_at"], name="exec_program_status"),
            models.Index(fields=["module", "status", "-created_at"], name="exec_module_status"),
            models.Index(fields=["owner", "-created_at"], name="exec_owner_created"),
            # The sweeper's and the reaper's: partial, so only top-level rows waiting or running are in them.
            models.Index(
                fields=["run_after"], name="exec_due", condition=Q(status="pending", parent__isnull=True)
            ),
            models.Index(
                fields=["lease_expires_at"], name="exec_lease", condition=Q(status="running", parent__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="unique_execution_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"execution {self.id} ({self.status})"

    @transition(
        field=status,
        source=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING],
        target=ExecutionStatus.CANCELLED,
        custom={"admin": True},
    )
    def cancel(self) -> None:
        pass
