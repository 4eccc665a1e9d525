"""The pipeline runtime with scripted modules: retries, fallback, compensation, parallel groups, cancellation."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import dspy
import pytest
from dspy.utils import DummyLM
from dspy.utils.exceptions import AdapterParseError, LMRateLimitError, LMServerError

from cognitive.engine import pipeline
from cognitive.engine.pipeline import PipelineEnv, merge_passages, run_module_once, run_pipeline
from cognitive.engine.runner import PreparedModule, prepare_module
from cognitive.engine.validation import ModuleSignature, compile_pipeline
from cognitive.errors import ExecutionFailed, RateLimited, RetryableError
from cognitive.signatures import parse_signature

QA = parse_signature("question: str -> answer: str")


@pytest.fixture(autouse=True)
def no_backoff():
    with mock.patch.object(pipeline, "RETRY_BASE_SECONDS", 0):
        yield


class Scripted(dspy.Module):
    """Answers from a script: an exception is raised, a string is the answer. Records its callers' threads."""

    def __init__(self, *script: Any) -> None:
        super().__init__()
        self.script = list(script)
        self.calls: list[dict[str, Any]] = []
        self.threads: set[str] = set()
        self.lms: list[Any] = []

    def forward(self, **inputs: Any) -> dspy.Prediction:
        self.calls.append(inputs)
        self.threads.add(threading.current_thread().name)
        self.lms.append(dspy.settings.lm)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        return dspy.Prediction(answer=step)


def prepared(module: dspy.Module, lm: Any = None) -> PreparedModule:
    return PreparedModule(module=module, lm=lm or DummyLM([]), inputs=QA.inputs, outputs=QA.outputs)


def server_error() -> LMServerError:
    return LMServerError("upstream is down", model="m", status=500)


def plan_for(spec: dict[str, Any]):
    modules = {"qa": ModuleSignature("qa", QA.inputs, QA.outputs)}
    return compile_pipeline(spec, modules=modules.get, corpus_exists=lambda name: True)


def execute(spec: dict[str, Any], modules: dict[str, dspy.Module], program_input=None, **env: Any):
    runs: list[Any] = []
    environment = PipelineEnv(
        modules={step_id: prepared(module) for step_id, module in modules.items()}, on_step=runs.append, **env
    )
    result = run_pipeline(plan_for(spec), program_input or {"question": "q"}, environment)
    return result, runs


def test_outputs_flow_from_step_to_step():
    first, second = Scripted("A1"), Scripted("A2")
    spec = {"steps": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa", "inputs": {"question": "$a.answer"}}],
            "return": {"a": "$a.answer", "b": "$b"}}

    result, runs = execute(spec, {"a": first, "b": second})

    assert result.output == {"a": "A1", "b": {"answer": "A2"}}
    assert second.calls == [{"question": "A1"}]
    assert [(r.step.id, r.status, r.attempts) for r in runs] == [("a", "completed", 1), ("b", "completed", 1)]
    assert result.metrics["steps"] == 2


def test_retries_recover():
    flaky = Scripted(server_error(), "ok")

    result, [run] = execute({"steps": [{"id": "a", "module": "qa", "retries": 2}]}, {"a": flaky})

    assert result.output == {"answer": "ok"}
    assert run.attempts == 2 and run.status == "completed"
    assert run.trace == [{"attempt": 1, "type": "error",
                          "error": {"type": "LMServerError", "message": "upstream is down"}}]


def test_a_fallback_replaces_the_output_after_the_retries():
    broken = Scripted(server_error())
    spec = {"steps": [{"id": "a", "module": "qa", "retries": 1, "on_error": {"fallback": {"answer": "sorry"}}}]}

    result, [run] = execute(spec, {"a": broken})

    assert result.output == {"answer": "sorry"}
    assert (run.status, run.recovered_by, run.attempts, run.error["type"]) == ("failed", "fallback", 2, "LMServerError")
    assert len(broken.calls) == 2


def test_a_compensation_stands_in_for_the_failed_step():
    spec = {"steps": [
        {"id": "a", "module": "qa", "on_error": {"compensate": {"id": "b", "module": "qa",
                                                                "inputs": {"question": "other"}}}},
        {"id": "c", "module": "qa", "inputs": {"question": "$a.answer"}}]}
    backup, last = Scripted("from b"), Scripted("done")

    result, runs = execute(spec, {"a": Scripted(ValueError("bad")), "b": backup, "c": last})

    assert result.output == {"answer": "done"}
    assert backup.calls == [{"question": "other"}]
    assert last.calls == [{"question": "from b"}]
    assert [(r.step.id, r.status, r.recovered_by, r.stands_in_for) for r in runs] == [
        ("a", "failed", "compensate", None), ("b", "completed", None, "a"), ("c", "completed", None, None)]


def test_a_failed_compensation_fails_the_run_naming_both():
    spec = {"steps": [{"id": "a", "module": "qa", "on_error": {"compensate": {"id": "b", "module": "qa"}}}]}

    with pytest.raises(ExecutionFailed) as error:
        execute(spec, {"a": Scripted(ValueError("bad")), "b": Scripted(ValueError("worse"))})

    assert "step 'a' failed and so did its compensation" in error.value.message
    assert error.value.extra["step"] == "a" and error.value.extra["compensation"] == "b"


@pytest.mark.parametrize(
    ("failure", "raised", "words"),
    [
        (server_error(), RetryableError, "step 'a': LMServerError"),
        (LMRateLimitError("slow", model="m", retry_after=3), RateLimited, "step 'a': LMRateLimitError"),
        (ValueError("nope"), ExecutionFailed, "step 'a' failed: ValueError: nope"),
    ],
)
def test_an_unrecovered_failure_is_classified_and_names_the_step(failure, raised, words):
    runs: list[Any] = []
    with pytest.raises(raised) as error:
        env = PipelineEnv(modules={"a": prepared(Scripted(failure))}, on_step=runs.append)
        run_pipeline(plan_for({"steps": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa"}]}),
                     {"question": "q"}, env)
    assert words in error.value.message
    assert [r.step.id for r in runs] == ["a"]  # the failed step is reported; later steps never ran
    if raised is RateLimited:
        assert error.value.retry_after == 3
    if raised is ExecutionFailed:
        assert error.value.extra == {"step": "a", "type": "ValueError"}


def test_a_rate_limit_is_not_retried_inside_the_step_but_on_error_still_applies():
    limited = Scripted(LMRateLimitError("slow", model="m"), "never")
    spec = {"steps": [{"id": "a", "module": "qa", "retries": 3, "on_error": {"fallback": {"answer": "later"}}}]}

    result, [run] = execute(spec, {"a": limited})

    assert result.output == {"answer": "later"} and run.attempts == 1 and len(limited.calls) == 1


def test_an_unparsable_answer_is_final():
    parse_error = AdapterParseError("ChatAdapter", dspy.Signature("question -> answer"), "prose")
    with pytest.raises(ExecutionFailed, match="could not be parsed") as error:
        execute({"steps": [{"id": "a", "module": "qa"}]}, {"a": Scripted(parse_error)})
    assert error.value.extra["type"] == "AdapterParseError"


def test_an_answer_that_does_not_fit_the_signature_fails_the_step():
    module = PreparedModule(module=Scripted("not a number"), lm=DummyLM([]), inputs=QA.inputs,
                            outputs=parse_signature("question: str -> answer: int").outputs)
    run = run_module_once(module, {"question": "q"}, step_id="m", module_name="m")
    assert run.status == "failed" and "does not fit the signature" in run.failure.message


def test_parallel_steps_run_on_worker_threads_with_the_callers_dspy_context():
    lm = DummyLM([])
    modules = {name: Scripted(name.upper()) for name in ("a", "b")}
    spec = {"steps": [{"id": "g", "parallel": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa"}]},
                      {"id": "c", "module": "qa", "inputs": {"question": "$b.answer"}}]}
    modules["c"] = Scripted("C")
    exits: list[str] = []
    env = PipelineEnv(modules={k: prepared(m, lm if k != "c" else None) for k, m in modules.items()},
                      on_step=lambda run: None, thread_exit=lambda: exits.append(threading.current_thread().name))

    with dspy.context(adapter=dspy.JSONAdapter()):
        seen_adapters: list[Any] = []
        original = Scripted.forward

        def forward(self, **inputs):
            seen_adapters.append(dspy.settings.adapter)
            return original(self, **inputs)

        with mock.patch.object(Scripted, "forward", forward):
            result = run_pipeline(plan_for(spec), {"question": "q"}, env)

    assert result.output == {"answer": "C"}
    assert all(name.startswith("dspex-g") for name in modules["a"].threads | modules["b"].threads)
    assert modules["a"].lms == [lm]  # the step's own LM, set by dspy.context on the worker thread
    assert all(isinstance(adapter, dspy.JSONAdapter) for adapter in seen_adapters)
    assert len(exits) == 2


def test_a_permanent_failure_in_a_group_wins_over_a_transient_one():
    spec = {"steps": [{"id": "g", "parallel": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa"}]}]}
    with pytest.raises(ExecutionFailed, match="step 'b'"):
        execute(spec, {"a": Scripted(server_error()), "b": Scripted(ValueError("x"))})


def test_cancellation_is_checked_between_steps():
    calls = iter([True])  # asked once: before step b
    second = Scripted("never")
    spec = {"steps": [{"id": "a", "module": "qa"}, {"id": "b", "module": "qa"}]}

    with pytest.raises(ExecutionFailed) as error:
        execute(spec, {"a": Scripted("x"), "b": second}, should_stop=lambda: next(calls))

    assert error.value.message == "cancelled" and error.value.extra == {"cancelled": True}
    assert second.calls == []


def test_retrieve_and_merge_steps():
    searches: list[dict[str, Any]] = []

    def retrieve(**kwargs: Any) -> list[str]:
        searches.append(kwargs)
        return ["p1", "p2"] if kwargs["method"] == "bm25" else ["p3", "p2"]

    spec = {"steps": [
        {"id": "g", "parallel": [
            {"id": "kw", "builtin": "retrieve", "corpus": "docs", "method": "bm25", "k": 2},
            {"id": "vec", "builtin": "retrieve", "corpus": "docs", "method": "vector", "k": 2}]},
        {"id": "merge", "builtin": "merge", "k": 2, "inputs": {"lists": ["$kw.passages", "$vec.passages"]}}]}

    result, runs = execute(spec, {}, {"query": "what?"}, retrieve=retrieve)

    assert result.output == {"passages": ["p2", "p1"]}
    assert sorted(s["method"] for s in searches) == ["bm25", "vector"]
    assert runs[0].trace[0] | {"latency_ms": 0} == {
        "attempt": 1, "type": "retrieval", "corpus": "docs", "method": "bm25", "k": 2, "query": "what?", "found": 2,
        "latency_ms": 0}


def test_merge_ranks_passages_found_by_several_lists_first():
    assert merge_passages([["a", "b", "c"], ["c", "d"], ["c", "b"]]) == ["c", "b", "a", "d"]
    assert merge_passages([["a", "b"], ["b", "a"]], k=1) == ["a"]
    assert merge_passages([]) == []


def test_a_module_with_demos_in_its_state_runs_them(local_lm_session):
    from types import SimpleNamespace

    from cognitive.engine.language_models import lm_for

    lm = lm_for(SimpleNamespace(name="local", model="openai/local", api_base=local_lm_session.url, api_key_env="",
                                params={}, rpm=None, tpm=None, updated_at=None))
    fields = ([{"name": "question", "type": "str"}], [{"name": "answer", "type": "str"}])
    base = prepare_module(module_type="predict", input_fields=fields[0], output_fields=fields[1], instructions="",
                          config={}, lm=lm)
    state = base.module.dump_state()
    state["demos"] = [{"question": "What is 1 + 1?", "answer": "2"}]
    state["lm"] = {"model": "openai/elsewhere", "api_base": "http://attacker.example"}
    loaded = prepare_module(module_type="predict", input_fields=fields[0], output_fields=fields[1], instructions="",
                            config={"temperature": 0.5}, lm=lm, state=state)

    assert loaded.module.demos == [{"question": "What is 1 + 1?", "answer": "2"}]
    assert loaded.module.lm is None  # a stored LM never replaces the configured one
    assert loaded.lm.kwargs["temperature"] == 0.5 and lm.kwargs.get("temperature") is None
    run = run_module_once(loaded, {"question": "What is 2 + 2?"}, step_id="m", module_name="m")
    assert run.status == "completed"
    [call] = [e for e in run.trace if e["type"] == "lm_call"]
    assert [m["role"] for m in call["messages"]] == ["system", "user", "assistant", "user"]
