"""Runs one DSPy module call inside its own DSPy context, with tracing and typed outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.adapters.utils import get_annotation_name

from cognitive.engine.modules import build_module, lm_params
from cognitive.engine.tracing import STEP_TRACE, StepTrace, to_json
from cognitive.engine.values import ValueMismatch, check_value
from cognitive.errors import InvalidInput
from cognitive.signatures import Field, signature_from_fields


class OutputMismatch(Exception):
    """The LM's answer parsed, but a field does not fit its declared type."""


@dataclass(frozen=True)
class PreparedModule:
    """A DSPy module ready to call, with the LM it runs on and its declared fields."""

    module: dspy.Module
    lm: dspy.BaseLM
    inputs: tuple[Field, ...]
    outputs: tuple[Field, ...]


def prepare_module(
    *,
    module_type: str,
    input_fields: list[dict[str, Any]],
    output_fields: list[dict[str, Any]],
    instructions: str,
    config: dict[str, Any],
    lm: dspy.BaseLM,
    state: Mapping[str, Any] | None = None,
) -> PreparedModule:
    """Build the module, load a stored JSON state into it, and bind its LM call parameters."""
    module = build_module(module_type, input_fields, output_fields, instructions, config)
    if state:
        load_json_state(module, state)
    params = lm_params(config)
    parsed = signature_from_fields(input_fields, output_fields, instructions)
    return PreparedModule(
        module=module, lm=lm.copy(**params) if params else lm, inputs=parsed.inputs, outputs=parsed.outputs
    )


def load_json_state(module: dspy.Module, state: Mapping[str, Any]) -> None:
    """Load DSPy JSON state (demos, instructions). Stored LMs are dropped: modules run on our rows' LMs.

    A state that does not match the module's structure (the module was redefined after the
    version was saved) is a domain error, not a crash.
    """
    cleaned = _without_lm(state)
    try:
        module.load_state(cleaned)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"the saved state does not fit this module ({type(exc).__name__}: {exc}); "
            "was the module changed after the version was saved?",
            {"path": "state"},
        ) from None


def _without_lm(state: Any, depth: int = 0) -> Any:
    """The state with every predictor's `lm` emptied (a leaf Predict's state, or a module's per predictor)."""
    if not isinstance(state, Mapping) or depth > 4:
        return state
    return {key: None if key == "lm" else _without_lm(value, depth + 1) for key, value in state.items()}


def dump_json_state(module: dspy.Module) -> dict[str, Any]:
    state = module.dump_state(json_mode=True)
    return to_json(_without_lm(state), limit=None)


def call_module(prepared: PreparedModule, inputs: Mapping[str, Any], trace: StepTrace) -> dict[str, Any]:
    """Run the module on `inputs` (already validated); returns the declared outputs, typed."""
    # History stays on for DSPy, but TracedLM keeps nothing: it hands each call to `trace` (see tracing.py).
    settings: dict[str, Any] = {
        "lm": prepared.lm, "track_usage": True, "usage_tracker": trace.usage, "disable_history": False,
        STEP_TRACE: trace,
    }
    if isinstance(prepared.module, dspy.ReAct):
        # Tool calls are only visible through DSPy's callback hooks.
        settings["callbacks"] = [*(dspy.settings.get("callbacks") or []), trace]
    with dspy.context(**settings):
        prediction = prepared.module(**inputs)
    return prediction_outputs(prediction, prepared.outputs, trace)


def prediction_outputs(prediction: Any, outputs: tuple[Field, ...], trace: StepTrace) -> dict[str, Any]:
    values = dict(prediction.items()) if hasattr(prediction, "items") else {}
    result: dict[str, Any] = {}
    for field in outputs:
        try:
            result[field.name] = check_value(to_json(values.get(field.name)), field.type, lenient=True)
        except ValueMismatch as exc:
            raise OutputMismatch(
                f"output field '{field.name}{exc.where}' does not fit {field.type.render()}: {exc.message}"
            ) from None
    extra = {key: to_json(value) for key, value in values.items() if key not in result}
    if extra:
        # reasoning, rationale, trajectory: not part of the contract, but what a reader of the trace wants.
        trace.record({"type": "prediction", "extra": extra})
    return result


def render_prompt(
    *, input_fields: list[dict[str, Any]], output_fields: list[dict[str, Any]], instructions: str, module_type: str,
    config: dict[str, Any], state: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Each predictor's prompt as chat messages, with `{field}` placeholders for the inputs."""
    module = build_module(module_type, input_fields, output_fields, instructions, config)
    if state:
        load_json_state(module, state)
    adapter = dspy.ChatAdapter()
    rendered = []
    for name, predictor in module.named_predictors():
        signature = predictor.signature
        placeholders = {field: f"{{{field}}}" for field in signature.input_fields}
        demos = [dict(demo) for demo in predictor.demos]
        messages = adapter.format(signature, demos, placeholders)
        rendered.append(
            {
                "predictor": name,
                "instructions": signature.instructions,
                "inputs": _field_rows(signature.input_fields),
                "outputs": _field_rows(signature.output_fields),
                "demos": to_json(demos),
                "messages": to_json(messages),
            }
        )
    return rendered


def _field_rows(fields: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "name": name,
            "type": get_annotation_name(info.annotation),
            "description": str((info.json_schema_extra or {}).get("desc", "")),
        }
        for name, info in fields.items()
    ]
