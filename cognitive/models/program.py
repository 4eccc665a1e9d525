from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from cognitive.models.base import OwnedModel

# Transitions a person may press in the admin; the rest are driven by services and workers.
_ADMIN = {"admin": True}


class ProgramStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    OPTIMIZING = "optimizing"
    ARCHIVED = "archived"


class Program(ConcurrentTransitionMixin, OwnedModel):
    """A pipeline of modules. Archived programs are hidden from non-staff reads."""

    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    pipeline = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    status = FSMField(default=ProgramStatus.DRAFT, choices=ProgramStatus.choices, protected=True)
    active_version = models.ForeignKey(
        "cognitive.ProgramVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_program_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.pipeline, dict):
            raise ValidationError({"pipeline": "must be a JSON object"})
        if not isinstance(self.variables, dict):
            raise ValidationError({"variables": "must be a JSON object"})

    @transition(field=status, source=ProgramStatus.DRAFT, target=ProgramStatus.ACTIVE, custom=_ADMIN)
    def activate(self) -> None:
        pass

    @transition(field=status, source=ProgramStatus.ACTIVE, target=ProgramStatus.OPTIMIZING)
    def start_optimization(self) -> None:
        pass

    @transition(field=status, source=ProgramStatus.OPTIMIZING, target=ProgramStatus.ACTIVE)
    def finish_optimization(self) -> None:
        pass

    @transition(
        field=status, source=[ProgramStatus.DRAFT, ProgramStatus.ACTIVE], target=ProgramStatus.ARCHIVED, custom=_ADMIN
    )
    def archive(self) -> None:
        pass


class VersionSource(models.TextChoices):
    MANUAL = "manual"
    OPTIMIZATION = "optimization"


class ImmutableRowError(Exception):
    pass


class ProgramVersion(models.Model):
    """A snapshot of a program's DSPy JSON state. Written once, never changed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.JSONField(default=dict, blank=True, help_text="DSPy JSON state per module (never pickle)")
    source = models.CharField(max_length=20, choices=VersionSource.choices, default=VersionSource.MANUAL)
    scores = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["program", "-number"]
        constraints = [models.UniqueConstraint(fields=["program", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.program.name} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ImmutableRowError("program versions are immutable once written")
        super().save(*args, **kwargs)
