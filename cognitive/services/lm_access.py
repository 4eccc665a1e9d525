"""Naming an LM: it must exist and be available to the user, and a call's max_tokens fits its limit.

An LM the user may not use answers exactly like one that does not exist, so its name leaks nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from cognitive.engine.modules import max_tokens_bound
from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, Module
from cognitive.selectors import lm_list
from cognitive.services.lms import lm_default


def lm_require_available(lm: LanguageModel | None, *, user: AbstractBaseUser, field: str = "lm") -> None:
    if lm is not None and not lm_list(user=user).filter(pk=lm.pk).exists():
        raise InvalidInput(f"unknown LM {lm.name!r}", {"field": field})


def lm_named(name: Any, *, user: AbstractBaseUser, field: str) -> LanguageModel:
    found = lm_list(user=user).filter(name=name).first() if isinstance(name, str) else None
    if found is None:
        raise InvalidInput(f"unknown LM {name!r}", {"field": field})
    return found


def lm_output_limit(lm: LanguageModel | None) -> int | None:
    """The LM's own max_output_tokens; a module without an LM calls the default one."""
    return (lm if lm is not None else lm_default()).max_output_tokens


def check_call_lm(context: dict[str, Any], module: Module) -> None:
    """A module call's options: `context.lm` is an LM the module's owner may use, and max_tokens fits it."""
    lm = lm_named(context["lm"], user=module.owner, field="context.lm") if "lm" in context else module.lm
    max_tokens = context.get("max_tokens", module.config.get("max_tokens"))
    bound = max_tokens_bound(lm_output_limit(lm))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > bound:
        where = "context" if "max_tokens" in context else "config"
        raise InvalidInput(
            f"{where}.max_tokens must be an integer from 1 to {bound} for this LM, got {max_tokens!r}",
            {"field": f"{where}.max_tokens"},
        )
