from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class Signature(OwnedModel):
    """A typed input → output contract, parsed from the signature language."""

    name = models.CharField(max_length=200, db_index=True)
    spec = models.TextField()
    instructions = models.TextField(blank=True)
    input_fields = models.JSONField(default=list, editable=False)
    output_fields = models.JSONField(default=list, editable=False)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_signature_name_per_owner")]

    def __str__(self) -> str:
        return self.name
