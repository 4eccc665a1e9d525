from __future__ import annotations

import uuid

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

env_var_name = RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "must be an environment variable name (A-Z, 0-9, _)")
litellm_model = RegexValidator(r"^[\w.\-]+/[\w.\-:/@]+$", "must be a LiteLLM model string like 'openai/gpt-4o-mini'")


class LanguageModel(models.Model):
    """A named LM configuration. Only the *name* of the variable holding the API key is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=100, unique=True)
    model = models.CharField(max_length=200, validators=[litellm_model], help_text="LiteLLM model string")
    api_base = models.URLField(max_length=500, blank=True)
    api_key_env = models.CharField(max_length=100, blank=True, validators=[env_var_name])
    embedding_model = models.CharField(max_length=200, blank=True, validators=[litellm_model])
    params = models.JSONField(default=dict, blank=True, help_text="default call params: temperature, max_tokens")
    rpm = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    tpm = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
