"""Builds DSPy modules from declared module rows, without calling an LM.

A module's config holds two kinds of keys: LM call parameters (temperature, max_tokens, n),
applied to the step's LM, and structural keys of its type (react's tools, multi-chain's M),
given to the DSPy constructor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy

from cognitive.engine.dspy_signatures import build_dspy_signature_from_fields
from cognitive.engine.limits import limit
from cognitive.engine.tools import TOOLS, tool_names
from cognitive.errors import InvalidInput

_LM_PARAMS = ("temperature", "max_tokens", "n")


class MultiChainComparison(dspy.Module):
    """M chain-of-thought attempts, then DSPy's MultiChainComparison picks the best.

    `dspy.MultiChainComparison` alone needs the attempts passed in; this pairs it with the
    chain that produces them, so it runs from the signature's inputs like any other module.
    """

    def __init__(self, signature: type[dspy.Signature], M: int = 3) -> None:
        super().__init__()
        self.M = M
        self.attempt = dspy.ChainOfThought(signature)
        self.compare = dspy.MultiChainComparison(signature, M=M)

    def forward(self, **inputs: Any) -> dspy.Prediction:
        # Distinct rollout ids keep the M attempts from being one cached answer repeated.
        completions = [
            self.attempt(**inputs, config={"rollout_id": index, "temperature": 0.7}) for index in range(self.M)
        ]
        return self.compare(completions=completions, **inputs)


def _react(signature: type[dspy.Signature], tools: list[str], max_iters: int = 5) -> dspy.Module:
    return dspy.ReAct(
        signature,
        tools=[dspy.Tool(TOOLS[name].function, name=name, desc=TOOLS[name].description) for name in tools],
        max_iters=max_iters,
    )


MODULE_CLASSES: dict[str, Callable[..., dspy.Module]] = {
    "predict": dspy.Predict,
    "chain_of_thought": dspy.ChainOfThought,
    "multi_chain_comparison": MultiChainComparison,
    "react": _react,
}


def _positive_int(key: str, value: Any, maximum: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInput(
            f"config.{key} must be an integer from {minimum} to {maximum}, got {value!r}", {"path": f"config.{key}"}
        )
    return value


def _check_tools(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(name, str) for name in value):
        raise InvalidInput(
            f"config.tools must be a non-empty list of tool names; available: {', '.join(tool_names())}",
            {"path": "config.tools"},
        )
    for index, name in enumerate(value):
        if name not in TOOLS:
            raise InvalidInput(
                f"unknown tool '{name}'; available: {', '.join(tool_names())}", {"path": f"config.tools[{index}]"}
            )
        if name in value[:index]:
            raise InvalidInput(f"tool '{name}' is listed twice", {"path": f"config.tools[{index}]"})
    return value


# Structural keys per type: key -> checker. Required keys are listed in _REQUIRED. The bounds are
# settings read at check time: M chains and max_iters ReAct rounds each multiply the LM calls.
_STRUCTURAL: dict[str, dict[str, Callable[[Any], Any]]] = {
    "predict": {},
    "chain_of_thought": {},
    "multi_chain_comparison": {"M": lambda v: _positive_int("M", v, limit("DSPEX_MULTI_CHAIN_MAX"), minimum=2)},
    "react": {
        "tools": _check_tools,
        "max_iters": lambda v: _positive_int("max_iters", v, limit("DSPEX_REACT_MAX_ITERS")),
    },
}
_REQUIRED: dict[str, tuple[str, ...]] = {"react": ("tools",)}


def max_tokens_bound(lm_limit: int | None) -> int:
    """The largest max_tokens a call may ask for: the platform's bound, lowered by the LM's own limit."""
    bound = limit("DSPEX_MODULE_MAX_TOKENS")
    return min(bound, lm_limit) if lm_limit else bound


def _check_lm_param(key: str, value: Any, lm_limit: int | None) -> None:
    if key == "temperature":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise InvalidInput(
                f"config.temperature must be a number between 0 and 2, got {value!r}", {"path": "config.temperature"}
            )
        return
    # n completions per call and max_tokens per completion multiply what one call costs.
    bound = limit("DSPEX_MODULE_MAX_N") if key == "n" else max_tokens_bound(lm_limit)
    _positive_int(key, value, bound)


def validate_module_config(module_type: str, config: Any, *, lm_max_tokens: int | None = None) -> dict[str, Any]:
    """Check a module's config; `lm_max_tokens` is the output limit of the LM it will call, if it has one."""
    if module_type not in MODULE_CLASSES:
        raise InvalidInput(
            f"unknown module type '{module_type}'; choose one of {', '.join(MODULE_CLASSES)}", {"path": "type"}
        )
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object", {"path": "config"})
    structural = _STRUCTURAL[module_type]
    for key, value in config.items():
        if key in structural:
            structural[key](value)
        elif key in _LM_PARAMS:
            _check_lm_param(key, value, lm_max_tokens)
        else:
            allowed = ", ".join([*structural, *_LM_PARAMS])
            raise InvalidInput(
                f"unknown config key '{key}' for module type '{module_type}'; allowed: {allowed}",
                {"path": f"config.{key}"},
            )
    for key in _REQUIRED.get(module_type, ()):
        if key not in config:
            raise InvalidInput(
                f"module type '{module_type}' needs config.{key}; available tools: {', '.join(tool_names())}",
                {"path": f"config.{key}"},
            )
    return config


def lm_params(config: dict[str, Any]) -> dict[str, Any]:
    """The LM call parameters of a (validated) module config."""
    return {key: value for key, value in config.items() if key in _LM_PARAMS}


def build_module(
    module_type: str, input_fields: list[dict], output_fields: list[dict], instructions: str, config: dict[str, Any]
) -> dspy.Module:
    validate_module_config(module_type, config)
    signature = build_dspy_signature_from_fields(input_fields, output_fields, instructions)
    structural = {key: value for key, value in config.items() if key in _STRUCTURAL[module_type]}
    return MODULE_CLASSES[module_type](signature, **structural)
