"""Builds DSPy modules from declared module rows, without calling an LM."""

from __future__ import annotations

from typing import Any

import dspy

from cognitive.engine.dspy_signatures import build_dspy_signature_from_fields
from cognitive.errors import InvalidInput

# Per type: config key → (accepted JSON types, check, description). LM call params go to the LM.
_LM_PARAMS: dict[str, tuple[tuple[type, ...], str]] = {
    "temperature": ((int, float), "a number between 0 and 2"),
    "max_tokens": ((int,), "a positive integer"),
    "n": ((int,), "a positive integer"),
}

MODULE_CLASSES: dict[str, type[dspy.Module]] = {
    "predict": dspy.Predict,
    "chain_of_thought": dspy.ChainOfThought,
}


def _check_lm_param(key: str, value: Any) -> None:
    types, wanted = _LM_PARAMS[key]
    valid = isinstance(value, types) and not isinstance(value, bool)
    if valid and key == "temperature":
        valid = 0 <= value <= 2
    elif valid:
        valid = value >= 1
    if not valid:
        raise InvalidInput(f"config.{key} must be {wanted}, got {value!r}", {"path": f"config.{key}"})


def validate_module_config(module_type: str, config: Any) -> dict[str, Any]:
    if module_type not in MODULE_CLASSES:
        raise InvalidInput(
            f"unknown module type '{module_type}'; choose one of {', '.join(MODULE_CLASSES)}", {"path": "type"}
        )
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object", {"path": "config"})
    for key, value in config.items():
        if key not in _LM_PARAMS:
            raise InvalidInput(
                f"unknown config key '{key}' for module type '{module_type}'; allowed: {', '.join(_LM_PARAMS)}",
                {"path": f"config.{key}"},
            )
        _check_lm_param(key, value)
    return config


def build_module(
    module_type: str, input_fields: list[dict], output_fields: list[dict], instructions: str, config: dict[str, Any]
) -> dspy.Module:
    validate_module_config(module_type, config)
    signature = build_dspy_signature_from_fields(input_fields, output_fields, instructions)
    return MODULE_CLASSES[module_type](signature, **config)
