from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from cognitive.lm_rules import validate_api_base_host, validate_key_env_name

env_var_name = RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "must be an environment variable name (A-Z, 0-9, _)")
litellm_model = RegexValidator(r"^[\w.\-]+/[\w.\-:/@]+$", "must be a LiteLLM model string like 'openai/gpt-4o-mini'")


class LMAvailability(models.TextChoices):
    EVERYONE = "everyone", "everyone"
    GROUPS = "groups", "members of the chosen groups (and staff)"


class LanguageModel(models.Model):
    """A named LM configuration. Only the *name* of the variable holding the API key is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True)
    model = models.CharField(max_length=200, validators=[litellm_model], help_text="LiteLLM model string")
    api_base = models.URLField(max_length=500, blank=True, validators=[validate_api_base_host])
    api_key_env = models.CharField(max_length=100, blank=True, validators=[env_var_name, validate_key_env_name])
    embedding_model = models.CharField(max_length=200, blank=True, validators=[litellm_model])
    params = models.JSONField(default=dict, blank=True, help_text="default call params: temperature, max_tokens")
    rpm = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    tpm = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="the most tokens one completion may ask for (lowers DSPEX_MODULE_MAX_TOKENS for this LM)",
    )
    availability = models.CharField(
        max_length=20, choices=LMAvailability.choices, default=LMAvailability.EVERYONE,
        help_text="who may name this LM in modules, corpora and call options",
    )
    groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="language_models",
        help_text="with availability 'groups': the groups whose members may use it",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
