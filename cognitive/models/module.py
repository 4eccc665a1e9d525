from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from cognitive.models.base import OwnedModel

# Transitions a person may press in the admin; the rest are driven by services and workers.
_ADMIN = {"admin": True}


class ModuleType(models.TextChoices):
    PREDICT = "predict", "Predict"
    CHAIN_OF_THOUGHT = "chain_of_thought", "Chain of thought"
    MULTI_CHAIN_COMPARISON = "multi_chain_comparison", "Multi-chain comparison"
    REACT = "react", "ReAct (tools)"


class ModuleState(models.TextChoices):
    UNINITIALIZED = "uninitialized"
    INITIALIZING = "initializing"
    READY = "ready"
    ERROR = "error"


class Module(ConcurrentTransitionMixin, OwnedModel):
    """A DSPy module declared as data. Running it never locks this row: see `executing` in selectors."""

    name = models.CharField(max_length=200, db_index=True)
    type = models.CharField(max_length=40, choices=ModuleType.choices)
    signature = models.ForeignKey("cognitive.Signature", on_delete=models.PROTECT, related_name="modules")
    lm = models.ForeignKey(
        "cognitive.LanguageModel",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="modules",
        help_text="empty: the default LM",
    )
    config = models.JSONField(default=dict, blank=True)
    cache_ttl = models.PositiveIntegerField(default=0, validators=[MinValueValidator(0)], help_text="seconds; 0 = off")
    state = FSMField(default=ModuleState.UNINITIALIZED, choices=ModuleState.choices, protected=True)
    error_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_module_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    @transition(field=state, source=ModuleState.UNINITIALIZED, target=ModuleState.INITIALIZING, custom=_ADMIN)
    def initialize(self) -> None:
        self.error_reason = ""

    @transition(field=state, source=ModuleState.INITIALIZING, target=ModuleState.READY)
    def mark_ready(self) -> None:
        pass

    @transition(field=state, source=[ModuleState.INITIALIZING, ModuleState.READY], target=ModuleState.ERROR)
    def fail(self, reason: str = "") -> None:
        self.error_reason = reason

    @transition(
        field=state, source=[ModuleState.ERROR, ModuleState.READY], target=ModuleState.UNINITIALIZED, custom=_ADMIN
    )
    def reset(self) -> None:
        self.error_reason = ""
