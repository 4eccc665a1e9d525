"""What runs cost and how they went, kept as they finish (rollups), and the spend limits staff set.

`UsageRollup` holds one row per hour bucket and dimension set, added to by the job core's
completion path in the same transaction as the run's final state (`services/usage.py`), so
stats and budgets read a few hundred small rows instead of scanning executions.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

# "No program / version / module": rollup keys are NOT NULL, since NULLs never conflict in a unique index.
NONE_ID = uuid.UUID(int=0)

# Upper bounds (ms) of the latency histogram kept per rollup row; the last bucket is open-ended.
# Percentiles are interpolated within a bucket, so they are estimates within the bucket's width.
LATENCY_BOUNDS_MS = (
    25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000, 20000,
    30000, 60000, 120000, 300000,
)
LATENCY_FIELDS = tuple(f"lat_{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))


class RollupScope(models.TextChoices):
    RUN = "run", "top-level run"
    STEP = "step", "pipeline step (by module)"
    LM = "lm", "LM calls (by LM)"


class UsageRollup(models.Model):
    bucket = models.DateTimeField(help_text="start of the hour (UTC)")
    scope = models.CharField(max_length=4, choices=RollupScope.choices)
    owner_id = models.BigIntegerField()
    program_id = models.UUIDField(default=NONE_ID)
    version_id = models.UUIDField(default=NONE_ID)
    module_id = models.UUIDField(default=NONE_ID)
    lm = models.CharField(max_length=100, blank=True, default="")
    runs = models.BigIntegerField(default=0)
    completed = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    cancelled = models.BigIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0, help_text="sum")
    lm_calls = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0, help_text="USD")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "scope", "owner_id", "program_id", "version_id", "module_id", "lm"],
                name="usage_rollup_key",
            )
        ]
        indexes = [
            models.Index(fields=["program_id", "scope", "bucket"], name="usage_program"),
            models.Index(fields=["owner_id", "scope", "bucket"], name="usage_owner"),
            models.Index(fields=["module_id", "scope", "bucket"], name="usage_module"),
            models.Index(fields=["lm", "scope", "bucket"], name="usage_lm"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} usage at {self.bucket:%Y-%m-%d %H:00}"


for _name in LATENCY_FIELDS:
    models.BigIntegerField(default=0).contribute_to_class(UsageRollup, _name)


class SpendBudget(models.Model):
    """Daily and monthly spend limits (USD) for one user or one program; either limit may be empty."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="spend_budget"
    )
    program = models.OneToOneField(
        "cognitive.Program", on_delete=models.CASCADE, null=True, blank=True, related_name="spend_budget"
    )
    daily_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="limit per UTC day; empty for none",
    )
    monthly_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="limit per UTC calendar month; empty for none",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, program__isnull=True) | Q(user__isnull=True, program__isnull=False),
                name="spend_budget_one_subject",
            )
        ]

    def __str__(self) -> str:
        return f"budget of {self.subject_label}"

    @property
    def subject_label(self) -> str:
        return f"program '{self.program.name}'" if self.program_id else f"user '{self.user.get_username()}'"
