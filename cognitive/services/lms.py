from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from cognitive.engine.rate_limits import configure_rate_limits
from cognitive.errors import InvalidInput
from cognitive.lm_rules import api_base_problem, key_env_problem
from cognitive.models import LanguageModel
from cognitive.services.common import save_unique

_PARAM_KEYS = {"temperature", "max_tokens", "top_p", "timeout", "num_retries"}


def _check_params(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise InvalidInput("params must be a JSON object", {"path": "params"})
    for key, value in params.items():
        if key not in _PARAM_KEYS:
            raise InvalidInput(
                f"unknown LM param '{key}'; allowed: {', '.join(sorted(_PARAM_KEYS))}", {"path": f"params.{key}"}
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidInput(f"params.{key} must be a non-negative number", {"path": f"params.{key}"})
    return params


def _check_endpoint(lm: LanguageModel) -> None:
    problems = {"api_key_env": key_env_problem(lm.api_key_env), "api_base": api_base_problem(lm.api_base)}
    for field, problem in problems.items():
        if problem:
            raise InvalidInput(f"{field}: {problem}", {"field": field})
    limit, default_tokens = lm.max_output_tokens, (lm.params or {}).get("max_tokens")
    if limit and isinstance(default_tokens, int | float) and default_tokens > limit:
        raise InvalidInput(
            f"params.max_tokens ({default_tokens}) is above this LM's max_output_tokens ({limit})",
            {"path": "params.max_tokens"},
        )


def lm_save(*, lm: LanguageModel, groups: Iterable[Group] | None = None, **fields: Any) -> LanguageModel:
    if "params" in fields:
        fields["params"] = _check_params(fields["params"])
    for key, value in fields.items():
        setattr(lm, key, value)
    _check_endpoint(lm)
    with transaction.atomic():
        saved = save_unique(lm, what="a language model")
        if groups is not None:
            saved.groups.set(groups)
    return saved


def lm_default() -> LanguageModel:
    """The LM used by modules that name none: a row called DSPEX_DEFAULT_LM_NAME, else the settings."""
    row = LanguageModel.objects.filter(name=settings.DSPEX_DEFAULT_LM_NAME).first()
    if row is not None:
        return row
    return LanguageModel(
        name=settings.DSPEX_DEFAULT_LM_NAME,
        model=settings.DSPEX_DEFAULT_LM,
        api_base=settings.DSPEX_DEFAULT_LM_API_BASE or "",
        api_key_env=settings.DSPEX_DEFAULT_LM_KEY_ENV or "",
    )


def lm_rate_limits_configure() -> None:
    """Count every LM's rpm/tpm in the Redis all workers share (in each process without one); once per process."""
    configure_rate_limits(storage_url=settings.REDIS_URL)
