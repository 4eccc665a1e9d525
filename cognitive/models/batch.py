from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class Batch(OwnedModel):
    """Many inputs run through one program; its executions are ordinary executions."""

    program = models.ForeignKey("cognitive.Program", on_delete=models.CASCADE, related_name="batches")
    size = models.PositiveIntegerField()
    priority = models.PositiveSmallIntegerField(default=5)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.size})"
