"""The metric registry: each metric in its plain DSPy form and GEPA's feedback form."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import dspy
import pytest

from cognitive.engine.language_models import clear_lm_cache
from cognitive.engine.metrics import METRIC_NAMES, get_metric
from cognitive.errors import InvalidInput
from cognitive.selectors import lm_by_name
from tests.factories import LanguageModelFactory

pytest_plugins = ["tests.fixtures_local_lm"]


def gold(**outputs):
    return dspy.Example(question="What is the capital of France?", **outputs).with_inputs("question")


def pred(**fields):
    return dspy.Prediction(**fields)


@pytest.mark.parametrize(
    "name, expected, predicted, score",
    [
        ("exact_match", "Paris", "  the paris! ", 1.0),
        ("exact_match", "Paris", "Lyon", 0.0),
        ("f1", "the Eiffel Tower", "Eiffel Tower", 1.0),
        ("f1", "new york city", "york city hall", pytest.approx(2 / 3)),
        ("f1", "Paris", "Lyon", 0.0),
        ("contains", "Paris", "It is Paris, of course.", 1.0),
        ("contains", "Paris", "Parisian food", 0.0),
        ("numeric_close", "42", "about 43 units", 0.0),
        ("numeric_close", "42", "about 42.3 units", 1.0),
        ("numeric_close", "1,000", "1000.5", 1.0),
        ("numeric_close", 3.0, "three", 0.0),
    ],
)
def test_plain_metric_scores(name, expected, predicted, score):
    metric = get_metric(name)
    assert metric(gold(answer=expected), pred(answer=predicted)) == score
    assert metric(gold(answer=expected), pred(answer=predicted), trace=[]) == score


def test_numeric_close_tolerance_is_configurable():
    assert get_metric("numeric_close", config={"rel_tol": 0.01})(gold(answer="42"), pred(answer="42.3")) == 1.0
    assert get_metric("numeric_close", config={"rel_tol": 0, "abs_tol": 0.5})(gold(answer=10), pred(answer=10.4)) == 1.0
    with pytest.raises(InvalidInput, match="rel_tol must be a number >= 0"):
        get_metric("numeric_close", config={"rel_tol": -1})


def test_field_defaults_to_the_first_output_and_can_be_chosen():
    example = gold(answer="Paris", country="France")
    prediction = pred(answer="Lyon", country="France")
    assert get_metric("exact_match")(example, prediction) == 0.0
    assert get_metric("exact_match", field="country")(example, prediction) == 1.0
    assert get_metric("exact_match", field="missing")(example, prediction) == 0.0


@pytest.mark.parametrize("name", ["exact_match", "f1", "contains", "numeric_close"])
def test_gepa_form_returns_score_and_feedback(name):
    metric = get_metric(name, for_gepa=True)
    inspect.signature(metric).bind(None, None, None, None, None)  # what GEPA checks
    right = metric(gold(answer="4"), pred(answer="4"), None, "predict", None)
    wrong = metric(gold(answer="4"), pred(answer="7"), None, "predict", None)
    assert isinstance(right, dspy.Prediction) and right.score == 1.0 and right.feedback
    assert wrong.score == 0.0 and "4" in wrong.feedback


def test_gepa_feedback_names_a_missing_field():
    result = get_metric("f1", for_gepa=True)(gold(answer="x"), pred(other="x"))
    assert result.score == 0.0 and result.feedback == "The prediction has no field 'answer'."


def test_unknown_metric_and_config_are_rejected_with_the_choices():
    with pytest.raises(InvalidInput, match="unknown metric 'bleu'; choose one of: exact_match, f1") as info:
        get_metric("bleu")
    assert info.value.extra["choices"] == list(METRIC_NAMES)
    with pytest.raises(InvalidInput, match="does not take tolerance"):
        get_metric("exact_match", config={"tolerance": 1})
    with pytest.raises(InvalidInput, match=r"needs config\.lm"):
        get_metric("llm_judge")


@pytest.mark.django_db
def test_llm_judge_unknown_lm():
    with pytest.raises(InvalidInput, match="no language model named 'nope'"):
        get_metric("llm_judge", config={"lm": "nope"}, language_models=lm_by_name)


@pytest.mark.django_db
def test_llm_judge_through_the_local_lm(local_lm):
    clear_lm_cache()
    LanguageModelFactory(name="judge", model="openai/local", api_base=local_lm.url)
    plain = get_metric("llm_judge", config={"lm": "judge", "criteria": "same city"}, language_models=lm_by_name)
    score = plain(gold(answer="Paris"), pred(answer="Paris"))
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    result = get_metric("llm_judge", config={"lm": "judge"}, for_gepa=True, language_models=lm_by_name)(
        gold(answer="Paris"), pred(answer="Lyon"), None, "predict", None
    )
    assert 0.0 <= result.score <= 1.0 and isinstance(result.feedback, str) and result.feedback


def test_llm_judge_takes_its_lm_from_the_callers_lookup_not_the_database(local_lm):
    clear_lm_cache()
    judge = LanguageModelConfigStub(name="judge", model="openai/local", api_base=local_lm.url)
    asked = []

    def language_models(name):
        asked.append(name)
        return judge if name == "judge" else None

    metric = get_metric("llm_judge", config={"lm": "judge"}, language_models=language_models)
    assert 0.0 <= metric(gold(answer="Paris"), pred(answer="Paris")) <= 1.0
    assert asked == ["judge"] and local_lm.stats()["chat_requests"] >= 1
    with pytest.raises(InvalidInput, match="no language model named 'judge'"):
        get_metric("llm_judge", config={"lm": "judge"})  # nobody to ask: no LM is known


@dataclass
class LanguageModelConfigStub:
    name: str
    model: str
    api_base: str
    api_key_env: str = ""
    params: dict = field(default_factory=dict)
    rpm: int | None = None
    tpm: int | None = None
    updated_at: str = "fixed"
