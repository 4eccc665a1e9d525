"""Every optimization run has a budget: LM calls and cost (USD) of the optimizer's own search.

A request may name `max_lm_calls` and/or `max_cost`. What it leaves out takes the operator's
default (DSPEX_OPTIMIZATION_DEFAULT_*); what it names may be lower or higher than the default, but
never above the ceiling the operator set (DSPEX_OPTIMIZATION_CEILING_*). The ceiling is the one
number that decides the most a single run can spend, whoever asks; a value above it is a 400 that
names the ceiling, not silently lowered, so the caller knows what they will get.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings

from cognitive.errors import InvalidInput

_KEYS = ("max_lm_calls", "max_cost")


def _limits(key: str) -> tuple[float, float]:
    suffix = key.upper()
    return (
        getattr(settings, f"DSPEX_OPTIMIZATION_DEFAULT_{suffix}"),
        getattr(settings, f"DSPEX_OPTIMIZATION_CEILING_{suffix}"),
    )


def _checked(key: str, value: Any) -> int | float:
    _, ceiling = _limits(key)
    if key == "max_lm_calls":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
            raise InvalidInput(
                f"budget.max_lm_calls must be an integer from 1 to {int(ceiling)} "
                "(DSPEX_OPTIMIZATION_CEILING_MAX_LM_CALLS)",
                {"field": "budget.max_lm_calls", "ceiling": int(ceiling)},
            )
        return value
    valid = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not (valid and 0 < value <= ceiling):
        raise InvalidInput(
            f"budget.max_cost must be a number > 0 and at most {ceiling} (DSPEX_OPTIMIZATION_CEILING_MAX_COST)",
            {"field": "budget.max_cost", "ceiling": ceiling},
        )
    return value


def optimization_budget(budget: Any) -> dict[str, Any]:
    """The budget a run gets: the request's values within the ceiling, defaults for the rest."""
    if budget is None:
        budget = {}
    if not isinstance(budget, dict):
        raise InvalidInput("budget must be a JSON object with max_lm_calls and/or max_cost", {"field": "budget"})
    unknown = sorted(set(budget) - set(_KEYS))
    if unknown:
        raise InvalidInput(
            f"budget does not take {', '.join(unknown)}; allowed: max_lm_calls, max_cost", {"field": "budget"}
        )
    resolved: dict[str, Any] = {}
    for key in _KEYS:
        value = budget.get(key)
        resolved[key] = _limits(key)[0] if value is None else _checked(key, value)
    return resolved
