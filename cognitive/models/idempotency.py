from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class IdempotentRequest(OwnedModel):
    """The first request a user sent with an Idempotency-Key, and the response it got (to replay).

    `status_code` is empty while that first request is still being handled.
    """

    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and JSON body")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="unique_idempotency_key_per_owner")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
