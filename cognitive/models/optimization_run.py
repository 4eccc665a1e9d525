"""Optimization jobs: the OptimizationRun row is the job (see docs/architecture.md), plus schedules
and the history of which version was active when."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from cognitive.models.base import OwnedModel, TimestampedModel
from cognitive.models.optimization import OptimizerType


class OptimizationRunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (OptimizationRunStatus.QUEUED, OptimizationRunStatus.RUNNING)


class OptimizationRun(ConcurrentTransitionMixin, OwnedModel):
    """One optimization of a program on a dataset. Workers change it only with conditional updates."""

    program = models.ForeignKey("cognitive.Program", on_delete=models.CASCADE, related_name="optimization_runs")
    optimizer = models.ForeignKey(
        "cognitive.Optimizer", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs",
        help_text="the named optimizer this run was started from, if any",
    )
    optimizer_type = models.CharField(max_length=40, choices=OptimizerType.choices)
    optimizer_config = models.JSONField(default=dict, blank=True)
    dataset = models.ForeignKey(
        "cognitive.Dataset", on_delete=models.SET_NULL, null=True, blank=True, related_name="optimization_runs"
    )
    metric = models.CharField(max_length=40)
    metric_config = models.JSONField(default=dict, blank=True)
    budget = models.JSONField(default=dict, blank=True, help_text="max_lm_calls and/or max_cost (USD)")
    schedule = models.ForeignKey(
        "cognitive.OptimizationSchedule", on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    status = FSMField(default=OptimizationRunStatus.QUEUED, choices=OptimizationRunStatus.choices, protected=True)
    # Job bookkeeping, as on Execution (see docs/architecture.md, "The job core").
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    attempts = models.JSONField(default=list, blank=True, help_text="one record per attempt, with its outcome")
    run_after = models.DateTimeField(null=True, blank=True, help_text="not claimed before this (a retry's backoff)")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    published_at = models.DateTimeField(null=True, blank=True, help_text="last time its id was sent to the queue")
    # What the run shows while it goes and when it is done.
    progress = models.JSONField(
        default=dict, blank=True, help_text="phase, trials done/planned, best score, LM calls, tokens, cost"
    )
    trials = models.JSONField(default=list, blank=True, help_text="one {n, score} per candidate the optimizer scored")
    baseline_score = models.FloatField(null=True, blank=True, help_text="the active version on the val split")
    final_score = models.FloatField(null=True, blank=True, help_text="the optimized program on the val split")
    result_version = models.ForeignKey(
        "cognitive.ProgramVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promoted = models.BooleanField(default=False)
    log = models.JSONField(default=list, blank=True)
    error = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["program", "-created_at"], name="optrun_program_created"),
            models.Index(fields=["status", "lease_expires_at"], name="optrun_lease"),
        ]
        constraints = [
            # Concurrent starts race to insert; the database lets exactly one through.
            models.UniqueConstraint(
                fields=["program"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_optimization_per_program",
            )
        ]

    def __str__(self) -> str:
        return f"optimization {self.pk} ({self.status})"

    @transition(
        field=status,
        source=[OptimizationRunStatus.QUEUED, OptimizationRunStatus.RUNNING],
        target=OptimizationRunStatus.CANCELLED,
        custom={"admin": True},
    )
    def cancel(self) -> None:
        pass


class OptimizationSchedule(OwnedModel):
    """Re-optimize a program on a cron schedule; beat runs it through a django-celery-beat PeriodicTask."""

    program = models.OneToOneField("cognitive.Program", on_delete=models.CASCADE, related_name="optimization_schedule")
    cron = models.CharField(max_length=100, help_text="five fields: minute hour day-of-month month day-of-week")
    optimizer_type = models.CharField(max_length=40, choices=OptimizerType.choices)
    optimizer_config = models.JSONField(default=dict, blank=True)
    dataset = models.ForeignKey("cognitive.Dataset", on_delete=models.CASCADE, related_name="optimization_schedules")
    metric = models.CharField(max_length=40)
    metric_config = models.JSONField(default=dict, blank=True)
    budget = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_started_at = models.DateTimeField(null=True, blank=True, help_text="when the last scheduled run started")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.program} @ {self.cron}"


class VersionChangeKind(models.TextChoices):
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class ActiveVersionChange(TimestampedModel):
    """Which version became active, from which, and why. Rollback replays these to undo the last promotion."""

    program = models.ForeignKey("cognitive.Program", on_delete=models.CASCADE, related_name="version_changes")
    kind = models.CharField(max_length=10, choices=VersionChangeKind.choices)
    from_version = models.ForeignKey(
        "cognitive.ProgramVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_version = models.ForeignKey(
        "cognitive.ProgramVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    run = models.ForeignKey(OptimizationRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["program", "created_at"]
