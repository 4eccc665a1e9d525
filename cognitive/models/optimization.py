from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class OptimizerType(models.TextChoices):
    BOOTSTRAP_FEW_SHOT = "bootstrap_few_shot", "BootstrapFewShot"
    BOOTSTRAP_RANDOM_SEARCH = "bootstrap_random_search", "BootstrapFewShotWithRandomSearch"
    MIPRO_V2 = "mipro_v2", "MIPROv2"
    SIMBA = "simba", "SIMBA"
    GEPA = "gepa", "GEPA"
    COPRO = "copro", "COPRO"
    LABELED_FEW_SHOT = "labeled_few_shot", "LabeledFewShot"


class Optimizer(OwnedModel):
    """A named DSPy optimizer configuration; config is checked against the optimizer's constructor."""

    name = models.CharField(max_length=200, db_index=True)
    type = models.CharField(max_length=40, choices=OptimizerType.choices)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_optimizer_name_per_owner")]

    def __str__(self) -> str:
        return self.name
