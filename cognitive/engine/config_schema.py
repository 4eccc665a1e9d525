"""Checks JSON config objects against the parameters a DSPy callable really accepts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from cognitive.errors import InvalidInput

_JSON_TYPES: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
    dict: (dict,),
    list: (list,),
}


def accepted_parameters(func: Callable[..., Any], exclude: Iterable[str]) -> dict[str, inspect.Parameter]:
    skipped = {"self", *exclude}
    return {
        name: param
        for name, param in inspect.signature(func).parameters.items()
        if name not in skipped and param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)
    }


def check_value_type(key: str, value: Any, param: inspect.Parameter, where: str) -> None:
    """Reject a value whose JSON type cannot match the parameter's default (None defaults accept anything)."""
    default = param.default
    if default is inspect.Parameter.empty or default is None:
        return
    expected = _JSON_TYPES.get(type(default))
    if expected is None:
        return
    if value is None and _allows_none(param.annotation):
        return  # e.g. MIPROv2's `auto: Optional[Literal[...]] = "light"`: None turns the preset off
    # bool is an int in Python, but `true` is not a sensible max_rounds.
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        raise InvalidInput(
            f"{where}: '{key}' must be {type(default).__name__}, got {type(value).__name__}",
            {"field": key, "path": f"config.{key}"},
        )


def _allows_none(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "None" in text or "Optional" in text


def require_object(config: Any, where: str) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise InvalidInput(f"{where}: config must be a JSON object", {"path": "config"})
    return config
