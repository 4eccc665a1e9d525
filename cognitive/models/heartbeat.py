from __future__ import annotations

from django.db import models


class HeartbeatKind(models.TextChoices):
    WORKER = "worker"
    SWEEPER = "sweeper"


class Heartbeat(models.Model):
    """When a background process last showed it was alive; `/readyz` reads these.

    In the database rather than the cache: the embedded default's cache is per process, and the
    web process must see what the workers wrote.
    """

    name = models.CharField(max_length=255, primary_key=True, help_text="worker:<node name>, or sweeper")
    kind = models.CharField(max_length=20, choices=HeartbeatKind.choices)
    queues = models.JSONField(default=list, blank=True, help_text="the queues a worker consumes")
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
