from __future__ import annotations

from types import SimpleNamespace

import dspy
import pytest
from dspy.clients.base_lm import GLOBAL_HISTORY

from cognitive.engine.language_models import TracedLM, clear_lm_cache, lm_for
from cognitive.engine.runner import PreparedModule, call_module
from cognitive.engine.tracing import StepTrace, summarize, to_json
from cognitive.signatures import parse_signature


def row(url: str, **changes):
    fields = {"name": "local", "model": "openai/local", "api_base": url, "api_key_env": "", "params": {},
              "rpm": None, "tpm": None, "updated_at": "t1"}
    return SimpleNamespace(**{**fields, **changes})


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_lm_cache()
    yield
    clear_lm_cache()


def test_lms_are_built_once_per_configuration(local_lm_session):
    first = lm_for(row(local_lm_session.url))

    assert lm_for(row(local_lm_session.url)) is first
    assert lm_for(row(local_lm_session.url, updated_at="t2")) is not first
    assert isinstance(first, TracedLM)
    assert (first.num_retries, first.cache) == (0, False)
    assert lm_for(row(local_lm_session.url, params={"num_retries": 2, "timeout": 3})).num_retries == 2


def test_the_api_key_comes_from_the_named_environment_variable(local_lm_session, monkeypatch):
    monkeypatch.setenv("DSPEX_TEST_KEY", "sk-test")
    assert lm_for(row(local_lm_session.url, api_key_env="DSPEX_TEST_KEY")).kwargs["api_key"] == "sk-test"
    assert lm_for(row(local_lm_session.url)).kwargs["api_key"] == "local"


def test_a_call_is_traced_with_usage_and_nothing_is_kept_in_history(local_lm_session):
    lm = lm_for(row(local_lm_session.url))
    parsed = parse_signature("question: str -> answer: str")
    module = PreparedModule(dspy.Predict("question -> answer"), lm, parsed.inputs, parsed.outputs)
    trace = StepTrace()
    before = len(GLOBAL_HISTORY)

    output = call_module(module, {"question": "What is 2 + 2?"}, trace)

    assert set(output) == {"answer"}
    [call] = trace.events()
    assert call["type"] == "lm_call" and call["model"] == "openai/local"
    assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0
    assert call["total_tokens"] == call["prompt_tokens"] + call["completion_tokens"]
    assert call["cache_hit"] is False and call["cost"] == 0.0 and call["error"] is None
    assert call["messages"][0]["role"] == "system" and "[[ ## answer ## ]]" in call["response"]
    assert trace.metrics()["total_tokens"] == call["total_tokens"]
    assert len(GLOBAL_HISTORY) == before and lm.history == [] and module.module.history == []


def test_a_failed_call_keeps_its_error(local_lm):
    lm = lm_for(row(local_lm.url))
    parsed = parse_signature("question: str -> answer: str")
    module = PreparedModule(dspy.Predict("question -> answer"), lm, parsed.inputs, parsed.outputs)
    local_lm.configure(fail_500_rate=1.0)
    trace = StepTrace()

    with pytest.raises(Exception, match="Internal server error"):
        call_module(module, {"question": "q"}, trace)

    [call] = trace.events()
    assert call["error"]["type"] == "LMServerError"
    assert summarize(trace.events())["failed_lm_calls"] == 1


def test_to_json_clips_long_text_and_drops_non_finite_numbers():
    assert to_json({"a": ("x" * 30_000,), "b": float("nan"), "c": {1, 2}})["a"][0].endswith("more characters]")
    assert to_json({"b": float("inf")}) == {"b": None}
    assert len(to_json("x" * 30_000, limit=None)) == 30_000
