"""Named metrics users choose from to score and optimize programs; never user-supplied code.

`get_metric(name, field=..., config=..., for_gepa=...)` returns a function every DSPy optimizer accepts:

- plain: `metric(example, prediction, trace=None) -> float` (1.0 / 0.0 for the yes-or-no metrics);
- `for_gepa=True`: `metric(gold, pred, trace=None, pred_name=None, pred_trace=None)`
  `-> dspy.Prediction(score=float, feedback=str)`, GEPA's feedback form.

Both compare one output field: `field`, or by default the first output field of the example
(its labels, i.e. the keys not marked as inputs). Config per metric:

- `exact_match`, `f1`, `contains`: none. Text is normalised (case, punctuation, articles, spaces) first;
  `contains` asks whether the expected text appears in the predicted one.
- `numeric_close`: `rel_tol` (default 0.01) and `abs_tol` (default 0): the first number in each value.
- `llm_judge`: `lm` (required, the name of a LanguageModel) and `criteria` (optional text); a small
  DSPy judge gives a score in [0, 1] and a sentence of feedback. The caller passes `language_models`,
  which finds a configuration by name: the engine never looks one up itself.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import dspy
from dspy.evaluate.metrics import normalize_text

from cognitive.engine.language_models import LanguageModelConfig, lm_for
from cognitive.errors import InvalidInput

METRIC_NAMES = ("exact_match", "f1", "contains", "numeric_close", "llm_judge")

# A scorer sees the expected and predicted values of the compared field (and the whole gold
# example, for the judge) and returns (score, feedback).
Scorer = Callable[[Any, Any, Any], tuple[float, str]]
# The LM configuration with this name, or None: the judge's LM comes from the caller's lookup.
LanguageModelLookup = Callable[[str], LanguageModelConfig | None]

_NUMBER_RE = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _tokens(value: Any) -> list[str]:
    return normalize_text(_text(value)).split()


# --------------------------------------------------------------------------- scorers


def _exact_match(config: dict[str, Any], language_models: LanguageModelLookup) -> Scorer:
    def score(expected: Any, predicted: Any, gold: Any) -> tuple[float, str]:
        if normalize_text(_text(expected)) == normalize_text(_text(predicted)):
            return 1.0, "Correct: the answer matches the expected one."
        return 0.0, f"Incorrect: expected {_text(expected)!r}, got {_text(predicted)!r}."

    return score


def _f1(config: dict[str, Any], language_models: LanguageModelLookup) -> Scorer:
    def score(expected: Any, predicted: Any, gold: Any) -> tuple[float, str]:
        want, got = _tokens(expected), _tokens(predicted)
        common = sum((Counter(want) & Counter(got)).values())
        if not want and not got:
            return 1.0, "Both the expected and the predicted answer are empty."
        if common == 0:
            return 0.0, f"No word in common with the expected answer {_text(expected)!r}."
        precision, recall = common / len(got), common / len(want)
        value = 2 * precision * recall / (precision + recall)
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        notes = [f"token F1 {value:.2f}"]
        if missing:
            notes.append(f"missing words: {', '.join(missing[:10])}")
        if extra:
            notes.append(f"extra words: {', '.join(extra[:10])}")
        return value, "; ".join(notes) + "."

    return score


def _contains(config: dict[str, Any], language_models: LanguageModelLookup) -> Scorer:
    def score(expected: Any, predicted: Any, gold: Any) -> tuple[float, str]:
        want, got = normalize_text(_text(expected)), normalize_text(_text(predicted))
        if want and re.search(rf"(?:^|\s){re.escape(want)}(?:\s|$)", got):
            return 1.0, "Correct: the answer contains the expected text."
        return 0.0, f"The answer does not contain the expected text {_text(expected)!r}."

    return score


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    match = _NUMBER_RE.search(_text(value))
    if match is None:
        return None
    try:
        return float(match.group().replace(",", ""))
    except ValueError:
        return None


def _numeric_close(config: dict[str, Any], language_models: LanguageModelLookup) -> Scorer:
    rel_tol = _non_negative(config, "rel_tol", 0.01)
    abs_tol = _non_negative(config, "abs_tol", 0.0)

    def score(expected: Any, predicted: Any, gold: Any) -> tuple[float, str]:
        want, got = _number(expected), _number(predicted)
        if want is None:
            return 0.0, f"The expected value {_text(expected)!r} holds no number."
        if got is None:
            return 0.0, f"The answer {_text(predicted)!r} holds no number; expected {want:g}."
        if math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
            return 1.0, f"Correct: {got:g} is within tolerance of {want:g}."
        return 0.0, f"Incorrect: expected {want:g}, got {got:g} (relative tolerance {rel_tol:g})."

    return score


class JudgeAnswer(dspy.Signature):
    """Judge a predicted answer against the expected answer for the same task inputs.
    Give a score between 0.0 (wrong) and 1.0 (fully correct) and one sentence of feedback saying what is wrong."""

    task_inputs: str = dspy.InputField(desc="the inputs the answer was given, as JSON")
    expected_answer: str = dspy.InputField()
    predicted_answer: str = dspy.InputField()
    criteria: str = dspy.InputField(desc="what matters when judging")
    feedback: str = dspy.OutputField(desc="one sentence: what is right or wrong about the predicted answer")
    score: float = dspy.OutputField(desc="0.0 to 1.0")


_DEFAULT_CRITERIA = "The predicted answer means the same as the expected answer."


def _llm_judge(config: dict[str, Any], language_models: LanguageModelLookup) -> Scorer:
    lm_name = config.get("lm")
    if not isinstance(lm_name, str) or not lm_name:
        raise InvalidInput("llm_judge needs config.lm: the name of a language model", {"field": "config.lm"})
    row = language_models(lm_name)
    if row is None:
        raise InvalidInput(f"llm_judge: no language model named {lm_name!r}", {"field": "config.lm"})
    criteria = config.get("criteria", _DEFAULT_CRITERIA)
    if not isinstance(criteria, str) or not criteria.strip():
        raise InvalidInput("llm_judge: config.criteria must be a non-empty string", {"field": "config.criteria"})
    judge = dspy.Predict(JudgeAnswer)

    def score(expected: Any, predicted: Any, gold: Any) -> tuple[float, str]:
        with dspy.context(lm=lm_for(row)):
            verdict = judge(
                task_inputs=_text(_inputs_of(gold)),
                expected_answer=_text(expected),
                predicted_answer=_text(predicted),
                criteria=criteria,
            )
        value = verdict.score if isinstance(verdict.score, int | float) else 0.0
        value = min(1.0, max(0.0, float(value))) if math.isfinite(value) else 0.0
        return value, str(verdict.feedback or "")

    return score


_SCORERS: dict[str, Callable[[dict[str, Any], LanguageModelLookup], Scorer]] = {
    "exact_match": _exact_match,
    "f1": _f1,
    "contains": _contains,
    "numeric_close": _numeric_close,
    "llm_judge": _llm_judge,
}
_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "exact_match": frozenset(),
    "f1": frozenset(),
    "contains": frozenset(),
    "numeric_close": frozenset({"rel_tol", "abs_tol"}),
    "llm_judge": frozenset({"lm", "criteria"}),
}


def _non_negative(config: dict[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidInput(f"config.{key} must be a number >= 0", {"field": f"config.{key}"})
    return float(value)


# --------------------------------------------------------------------------- field selection


def _labels(example: Any) -> dict[str, Any]:
    if isinstance(example, dspy.Example):
        if example._input_keys is not None:
            return dict(example.labels().items())
        return dict(example.items())
    return dict(example) if isinstance(example, dict) else {}


def _inputs_of(example: Any) -> dict[str, Any]:
    if isinstance(example, dspy.Example) and example._input_keys is not None:
        return dict(example.inputs().items())
    return {}


def _value(obj: Any, name: str) -> tuple[bool, Any]:
    if isinstance(obj, dict):
        return name in obj, obj.get(name)
    if isinstance(obj, dspy.Example):
        return name in obj, obj.get(name)
    return hasattr(obj, name), getattr(obj, name, None)


def _compare(scorer: Scorer, field: str | None, gold: Any, pred: Any) -> tuple[float, str]:
    labels = _labels(gold)
    name = field or next(iter(labels), None)
    if name is None:
        return 0.0, "The example has no expected output to compare with."
    has_expected, expected = _value(gold, name)
    if not has_expected:
        return 0.0, f"The example has no expected value for {name!r}."
    has_predicted, predicted = _value(pred, name)
    if not has_predicted:
        return 0.0, f"The prediction has no field {name!r}."
    return scorer(expected, predicted, gold)


# --------------------------------------------------------------------------- public


def validate_metric_config(name: str, config: dict[str, Any] | None) -> dict[str, Any]:
    if name not in _SCORERS:
        raise InvalidInput(
            f"unknown metric {name!r}; choose one of: {', '.join(METRIC_NAMES)}",
            {"field": "metric", "choices": list(METRIC_NAMES)},
        )
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise InvalidInput("metric config must be a JSON object", {"field": "config"})
    unknown = sorted(set(config) - _CONFIG_KEYS[name])
    if unknown:
        allowed = ", ".join(sorted(_CONFIG_KEYS[name])) or "none"
        raise InvalidInput(
            f"metric {name} does not take {', '.join(unknown)} (allowed: {allowed})",
            {"field": "config", "unknown": unknown},
        )
    return config


def no_language_models(name: str) -> None:
    """The lookup of a caller that offers no LMs: `llm_judge` then reports the named one as unknown."""
    return None


def get_metric(
    name: str,
    *,
    field: str | None = None,
    config: dict[str, Any] | None = None,
    for_gepa: bool = False,
    language_models: LanguageModelLookup = no_language_models,
) -> Callable[..., Any]:
    """The named metric as a DSPy metric function (see the module docstring).

    `language_models` finds the judge's LM for `llm_judge`; by default there are none to find.
    """
    config = validate_metric_config(name, config)
    scorer = _SCORERS[name](config, language_models)
    if field is not None and (not isinstance(field, str) or not field):
        raise InvalidInput("metric field must be a non-empty string", {"field": "field"})

    if for_gepa:

        def feedback_metric(
            gold: Any, pred: Any, trace: Any = None, pred_name: str | None = None, pred_trace: Any = None
        ) -> dspy.Prediction:
            value, feedback = _compare(scorer, field, gold, pred)
            return dspy.Prediction(score=value, feedback=feedback)

        feedback_metric.__name__ = f"{name}_feedback"
        return feedback_metric

    def metric(example: Any, prediction: Any, trace: Any = None) -> float:
        return _compare(scorer, field, example, prediction)[0]

    metric.__name__ = name
    return metric
