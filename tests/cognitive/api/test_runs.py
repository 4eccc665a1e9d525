"""Running modules and programs through the API against the local LM (the real DSPy → HTTP path)."""

from __future__ import annotations

import copy
import random
import uuid
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitive.models import Execution, ExecutionStatus, Program, ProgramVersion
from cognitive.services.corpora import corpus_create
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from local_lm.responder import model_answer, parse_input_values
from tests.factories import LanguageModelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

RAG_SPEC = "question: str, context: list[str] -> answer: str, confidence: float"
DOCUMENTS = [
    "DSPex runs DSPy programs as durable background jobs on Celery.",
    "Programs are pipelines of modules; parallel groups run on a thread pool.",
    "Every run is recorded as an Execution with a trace of its LM calls.",
    "The capital of France is Paris.",
]
FALLBACK = {"answer": "I am unable to answer right now.", "confidence": 0.0}


def rag_pipeline(corpus: str = "docs", module: str = "rag_qa") -> dict[str, Any]:
    """The original design's RAG example."""
    return {
        "steps": [
            {"id": "search", "parallel": [
                {"id": "keyword", "builtin": "retrieve", "corpus": corpus, "method": "bm25", "k": 3,
                 "inputs": {"query": "$input.question"}},
                {"id": "vector", "builtin": "retrieve", "corpus": corpus, "method": "vector", "k": 3,
                 "inputs": {"query": "$input.question"}},
            ]},
            {"id": "merge", "builtin": "merge", "inputs": {"lists": ["$keyword.passages", "$vector.passages"]}},
            {"id": "answer", "module": module, "inputs": {"question": "$input.question", "context": "$merge.passages"},
             "retries": 1, "on_error": {"fallback": FALLBACK}},
        ],
        "return": "$answer",
    }


@pytest.fixture
def lm(local_lm):
    return LanguageModelFactory(name="local", api_base=local_lm.url, embedding_model="openai/local-embed")


def make_module(owner, name: str = "rag_qa", spec: str = RAG_SPEC, type_: str = "chain_of_thought", lm=None, **kw):
    signature = signature_create(owner=owner, name=f"{name}-signature", spec=spec)
    return module_create(owner=owner, name=name, type=type_, signature=signature, lm=lm, **kw)


def active_program(owner, pipeline: dict[str, Any], name: str = "p") -> Program:
    return program_activate(program=program_create(owner=owner, name=name, pipeline=pipeline))


def run(api, program: Program, input: dict[str, Any], **extra: Any):
    return api.post(f"/api/programs/{program.pk}/run/", {"input": input, "wait": True, **extra}, format="json")


def tree(api, execution_id: str) -> dict[str, Any]:
    response = api.get(f"/api/executions/{execution_id}/")
    assert response.status_code == 200, response.json()
    return response.json()


def steps_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {child["step_id"]: child for child in body["children"]}


# --------------------------------------------------------------------------- the RAG example


@pytest.mark.django_db(transaction=True)  # retrieval reads documents from the parallel group's threads
def test_the_rag_example_runs_end_to_end_through_the_api(api, user, lm, local_lm):
    assert api.post("/api/corpora/", {"name": "docs", "documents": DOCUMENTS, "embedding_lm": "local"},
                    format="json").status_code == 201
    signature = api.post("/api/signatures/", {"name": "rag", "spec": RAG_SPEC}, format="json").json()
    assert api.post("/api/modules/", {"name": "rag_qa", "type": "chain_of_thought", "signature": signature["id"],
                                      "lm": "local"}, format="json").status_code == 201
    created = api.post("/api/programs/", {"name": "rag", "pipeline": rag_pipeline()}, format="json")
    assert created.status_code == 201, created.json()
    program_id = created.json()["id"]
    assert api.post(f"/api/programs/{program_id}/activate/").status_code == 200
    local_lm.reset_stats()

    response = api.post(f"/api/programs/{program_id}/run/",
                        {"input": {"question": "What is the capital of France?"}, "wait": True}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "completed"
    execution = tree(api, body["execution"])
    steps = steps_of(execution)
    assert set(steps) == {"keyword", "vector", "merge", "answer"}
    assert all(step["status"] == "completed" for step in steps.values())
    assert "The capital of France is Paris." in steps["keyword"]["output"]["passages"]
    assert steps["merge"]["input"]["lists"] == [steps["keyword"]["output"]["passages"],
                                                steps["vector"]["output"]["passages"]]
    assert steps["answer"]["input"]["context"] == steps["merge"]["output"]["passages"]
    [call] = [event for event in steps["answer"]["trace"] if event["type"] == "lm_call"]
    assert call["model"] == "openai/local"
    assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0
    assert call["latency_ms"] >= 0 and call["cache_hit"] is False and call["error"] is None
    assert "What is the capital of France?" in call["messages"][-1]["content"]
    # What the local LM answers is a function of the inputs it read from the prompt.
    read = parse_input_values(call["messages"][-1]["content"])
    assert body["output"]["answer"] == model_answer(read, 0)
    assert body["output"]["confidence"] in (0.9, 0.35)
    assert [e["type"] for e in steps["keyword"]["trace"]] == ["retrieval"]
    assert execution["metrics"]["lm_calls"] == 1
    assert execution["metrics"]["total_tokens"] == call["total_tokens"]
    assert [s["step"] for s in execution["trace"]] == ["keyword", "vector", "merge", "answer"]
    assert {s["execution"] for s in execution["trace"]} == {c["id"] for c in execution["children"]}
    assert local_lm.stats()["chat_requests"] == 1


def test_a_parallel_group_runs_its_steps_concurrently(api, user, lm, local_lm):
    make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    pipeline = {"steps": [{"id": "both", "parallel": [
        {"id": "first", "module": "qa"}, {"id": "second", "module": "qa"}, {"id": "third", "module": "qa"}]}]}
    program = active_program(user, pipeline)
    # Latency keeps each request in flight long enough for the others to arrive while it is.
    local_lm.configure(latency_ms=300)
    local_lm.reset_stats()

    response = run(api, program, {"question": "What is 2 + 2?"})

    assert response.status_code == 200, response.json()
    answer = model_answer({"question": "What is 2 + 2?"}, 0)
    assert response.json()["output"] == {step: {"answer": answer} for step in ("first", "second", "third")}
    assert local_lm.stats()["max_in_flight"] >= 2


# --------------------------------------------------------------------------- injected failures


def seed_failing_first_only(rate: float) -> int:
    """A seed whose first failure draw fails and second succeeds (local_lm draws once per request)."""
    for seed in range(1000):
        rolls = random.Random(seed)
        if rolls.random() < rate <= rolls.random():
            return seed
    raise AssertionError("no seed found")


def qa_program(user, lm, step: dict[str, Any] | None = None):
    make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    return active_program(user, {"steps": [{"id": "answer", "module": "qa", **(step or {})}]})


def test_retries_recover_from_a_failed_lm_call(api, user, lm, local_lm):
    program = qa_program(user, lm, {"retries": 1})
    local_lm.configure(fail_500_rate=0.5, seed=seed_failing_first_only(0.5))

    response = run(api, program, {"question": "What is 3 + 4?"})

    assert response.status_code == 200, response.json()
    assert response.json()["output"] == {"answer": model_answer({"question": "What is 3 + 4?"}, 0)}
    step = steps_of(tree(api, response.json()["execution"]))["answer"]
    assert step["status"] == "completed" and step["metrics"]["attempts"] == 2
    calls = [e for e in step["trace"] if e["type"] == "lm_call"]
    assert [c["attempt"] for c in calls] == [1, 2]
    assert calls[0]["error"]["type"] == "LMServerError" and calls[1]["error"] is None
    assert local_lm.stats()["failures_injected"]["500"] == 1


def test_a_fallback_answers_when_the_step_keeps_failing(api, user, lm, local_lm):
    program = qa_program(user, lm, {"retries": 1, "on_error": {"fallback": {"answer": "sorry"}}})
    local_lm.configure(fail_500_rate=1.0)

    response = run(api, program, {"question": "What is 3 + 4?"})

    assert response.status_code == 200, response.json()
    assert response.json() == {"execution": mock.ANY, "status": "completed", "output": {"answer": "sorry"}}
    step = steps_of(tree(api, response.json()["execution"]))["answer"]
    assert step["status"] == "failed" and step["output"] == {"answer": "sorry"}
    assert step["error"]["type"] == "LMServerError" and step["error"]["recovered_by"] == "fallback"
    assert step["metrics"]["attempts"] == 2
    assert local_lm.stats()["failures_injected"]["500"] == 2


def test_compensation_runs_the_other_step_instead(api, user, lm, local_lm, local_lm_session):
    backup_lm = LanguageModelFactory(name="backup", api_base=local_lm_session.url)
    make_module(user, "backup_qa", spec="question: str -> answer: str", type_="predict", lm=backup_lm)
    compensate = {"id": "backup", "module": "backup_qa", "inputs": {"question": "$input.question"}}
    program = qa_program(user, lm, {"on_error": {"compensate": compensate}})
    make_module(user, "after", spec="answer: str -> verdict: str", type_="predict", lm=backup_lm)
    program.pipeline["steps"].append({"id": "check", "module": "after", "inputs": {"answer": "$answer.answer"}})
    program.pipeline["return"] = {"answer": "$answer.answer", "verdict": "$check.verdict"}
    Program.objects.filter(pk=program.pk).update(pipeline=program.pipeline)
    local_lm.configure(fail_500_rate=1.0)

    response = run(api, program, {"question": "What is 5 * 5?"})

    assert response.status_code == 200, response.json()
    assert response.json()["output"]["answer"] == model_answer({"question": "What is 5 * 5?"}, 0)
    steps = steps_of(tree(api, response.json()["execution"]))
    assert steps["answer"]["status"] == "failed" and steps["answer"]["metrics"]["recovered_by"] == "compensate"
    assert steps["backup"]["status"] == "completed"
    assert steps["backup"]["metrics"]["stands_in_for"] == "answer"
    assert steps["check"]["input"] == {"answer": response.json()["output"]["answer"]}


def test_a_failing_step_without_on_error_fails_the_run_naming_the_step(api, user, lm):
    program = qa_program(user, lm)

    # The local LM answers prose without field markers for this input, so DSPy cannot parse it.
    response = run(api, program, {"question": "LOCAL_LM_FAIL_PARSE please"})

    assert response.status_code == 422, response.json()
    body = response.json()
    assert "step 'answer'" in body["message"]
    assert body["extra"]["step"] == "answer" and body["extra"]["type"] == "AdapterParseError"
    execution = Execution.objects.get(pk=body["extra"]["execution"])
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error["type"] == "ExecutionFailed"
    assert execution.children.get().status == ExecutionStatus.FAILED


def test_a_transient_failure_without_on_error_is_retried_later(api, user, lm, local_lm, no_broker):
    program = qa_program(user, lm)
    local_lm.configure(fail_500_rate=1.0)

    response = run(api, program, {"question": "What is 1 + 1?"})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["error"]["type"] == "RetryableError" and "step 'answer'" in body["error"]["message"]
    assert no_broker.called  # re-published with a backoff


def test_a_rate_limit_snoozes_the_run(api, user, lm, local_lm, no_broker):
    program = qa_program(user, lm, {"retries": 2})
    local_lm.configure(fail_429_rate=1.0, retry_after_s=4)

    response = run(api, program, {"question": "What is 1 + 1?"})

    assert response.status_code == 202
    row = Execution.objects.get(pk=response.json()["execution"])
    assert row.status == ExecutionStatus.PENDING and row.attempt == 0  # snoozing uses no attempt
    assert row.error["type"] == "RateLimited"
    assert local_lm.stats()["failures_injected"]["429"] == 1  # rate limits are not retried in the step
    assert no_broker.call_args.kwargs["countdown"] >= 4


# --------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({}, "question", "missing input field 'question'"),
        ({"question": "q", "extra": 1}, "extra", "unknown input field 'extra'"),
        ({"question": 3}, "question", "expected str, got number"),
        ({"question": None}, "question", "expected str, got null"),
    ],
)
def test_program_input_is_validated_before_any_lm_call(api, user, lm, local_lm, given, field, words):
    program = qa_program(user, lm)

    response = run(api, program, given)

    assert response.status_code == 400, response.json()
    assert words in response.json()["message"]
    assert response.json()["extra"]["field"] == field
    assert local_lm.stats()["requests"] == 0
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    ("given", "field", "words"),
    [
        ({"question": "q"}, "context", "missing input field 'context'"),
        ({"question": "q", "context": "not a list"}, "context", "expected list[str], got string"),
        ({"question": "q", "context": ["ok", 7]}, "context", "'context[1]': expected str, got number"),
        ({"question": "q", "context": [], "k": 3}, "k", "unknown input field 'k'"),
        ("text", None, "input must be a JSON object"),
    ],
)
def test_module_execute_validates_input_against_the_signature(api, user, lm, local_lm, given, field, words):
    module = make_module(user, lm=lm)

    response = api.post(f"/api/modules/{module.pk}/execute/", {"input": given}, format="json")

    assert response.status_code == 400, response.json()
    assert words in response.json()["message"]
    assert response.json()["extra"]["field"] == field
    assert local_lm.stats()["requests"] == 0


def test_optional_and_numeric_inputs(api, user, lm):
    module = make_module(user, "typed", spec="question: str, hint: Optional[str], n: float -> answer: int", lm=lm,
                         type_="predict")

    response = api.post(f"/api/modules/{module.pk}/execute/",
                        {"input": {"question": "What is 6 * 7?", "n": 2}}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["output"] == {"answer": 42}
    assert Execution.objects.get(pk=response.json()["execution"]).input == {"question": "What is 6 * 7?", "n": 2}


# --------------------------------------------------------------------------- module execute


def test_module_execute_returns_the_output_and_records_the_lm_call(api, user, lm):
    module = make_module(user, lm=lm)

    response = api.post(f"/api/modules/{module.pk}/execute/",
                        {"input": {"question": "What is 12 + 7?", "context": []}}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    read = {"question": "What is 12 + 7?", "context": "[]"}
    assert body["status"] == "completed" and body["output"]["answer"] == model_answer(read, 0)
    execution = tree(api, body["execution"])
    assert execution["module"] == str(module.pk) and execution["children"] == []
    kinds = [event["type"] for event in execution["trace"]]
    assert kinds == ["lm_call", "prediction"]  # the chain of thought's reasoning is kept beside the output
    assert execution["metrics"]["lm_calls"] == 1 and execution["metrics"]["total_tokens"] > 0


def test_module_execute_context_overrides_call_options(api, user, lm, local_lm_session):
    LanguageModelFactory(name="other", api_base=local_lm_session.url)
    module = make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    url = f"/api/modules/{module.pk}/execute/"

    ok = api.post(url, {"input": {"question": "What is 1 + 2?"}, "context": {"lm": "other", "temperature": 0.2}},
                  format="json")
    unknown = api.post(url, {"input": {"question": "q"}, "context": {"seed": 1}}, format="json")
    bad = api.post(url, {"input": {"question": "q"}, "context": {"temperature": 5}}, format="json")
    bad_lm = api.post(url, {"input": {"question": "q"}, "context": {"lm": ["x"]}}, format="json")

    assert ok.status_code == 200 and ok.json()["output"] == {"answer": model_answer({"question": "What is 1 + 2?"}, 0)}
    assert Execution.objects.get(pk=ok.json()["execution"]).context == {"lm": "other", "temperature": 0.2}
    assert (unknown.status_code, unknown.json()["extra"]["field"]) == (400, "context.seed")
    assert (bad.status_code, bad.json()["extra"]["field"]) == (400, "context.temperature")
    assert (bad_lm.status_code, bad_lm.json()["extra"]["field"]) == (400, "context.lm")


@pytest.mark.parametrize(
    ("type_", "config", "least_calls"),
    [("react", {"tools": ["calculator", "word_count"], "max_iters": 2}, 2), ("multi_chain_comparison", {"M": 2}, 3)],
)
def test_react_and_multi_chain_modules_run_end_to_end(api, user, lm, type_, config, least_calls):
    module = make_module(user, type_, spec="question: str -> answer: int", type_=type_, lm=lm, config=config)

    response = api.post(f"/api/modules/{module.pk}/execute/", {"input": {"question": "What is 6 * 7?"}}, format="json")

    assert response.status_code == 200, response.json()
    assert isinstance(response.json()["output"]["answer"], int)
    trace = tree(api, response.json()["execution"])["trace"]
    assert sum(1 for e in trace if e["type"] == "lm_call") >= least_calls


# --------------------------------------------------------------------------- program state


def test_only_an_active_program_runs(api, user, lm):
    make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    program = program_create(owner=user, name="draft", pipeline={"steps": [{"id": "a", "module": "qa"}]})

    response = run(api, program, {"question": "q"})

    assert response.status_code == 409
    assert "draft" in response.json()["message"]


def test_a_queued_run_is_accepted_and_its_input_checked_first(api, user, lm, no_broker):
    program = qa_program(user, lm)

    queued = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "q"}}, format="json")
    invalid = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": 1}}, format="json")

    assert queued.status_code == 202 and queued.json()["status"] == "pending"
    assert Execution.objects.get(pk=queued.json()["execution"]).status == ExecutionStatus.PENDING
    assert invalid.status_code == 400 and invalid.json()["extra"]["field"] == "question"


def test_versions_snapshot_state_and_a_run_uses_the_active_version(api, user, lm):
    program = qa_program(user, lm)

    first = api.post(f"/api/programs/{program.pk}/versions/")
    second = api.post(f"/api/programs/{program.pk}/versions/")

    assert (first.status_code, first.json()["number"]) == (201, 1)
    assert second.json()["number"] == 2
    assert set(first.json()["state"]) == {"answer"}
    assert first.json()["state"]["answer"]["demos"] == []
    listed = api.get(f"/api/programs/{program.pk}/versions/").json()
    assert [v["number"] for v in listed["results"]] == [2, 1]
    assert "state" not in listed["results"][0]

    state = first.json()["state"]
    state["answer"]["demos"] = [{"question": "What is 1 + 1?", "answer": "2"}]
    state["answer"]["signature"]["instructions"] = "Answer with a number only."
    version = ProgramVersion.objects.create(program=program, number=3, state=state)
    Program.objects.filter(pk=program.pk).update(active_version=version)

    response = run(api, program, {"question": "What is 2 + 5?"})

    assert response.status_code == 200, response.json()
    execution = Execution.objects.get(pk=response.json()["execution"])
    assert execution.version == version
    messages = execution.children.get().trace[0]["messages"]
    assert "Answer with a number only." in messages[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]  # the demo is in the prompt

    prompt = api.get(f"/api/program-versions/{version.pk}/prompt/")
    assert prompt.status_code == 200, prompt.json()
    [step] = prompt.json()["steps"]
    [predictor] = step["predictors"]
    assert step["step"] == "answer" and predictor["instructions"] == "Answer with a number only."
    assert predictor["demos"] == [{"question": "What is 1 + 1?", "answer": "2"}]
    assert predictor["inputs"] == [{"name": "question", "type": "str", "description": "${question}"}]
    assert "{question}" in predictor["messages"][-1]["content"]
    assert "Answer with a number only." in predictor["text"]


def test_program_stats_count_runs_not_their_steps(api, user, lm):
    make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    program = active_program(user, {"steps": [{"id": "a", "module": "qa"},
                                              {"id": "b", "module": "qa", "inputs": {"question": "$a.answer"}}]})
    execution = Execution.objects.get(pk=run(api, program, {"question": "q"}).json()["execution"])

    body = api.get(f"/api/programs/{program.pk}/").json()
    module = api.get(f"/api/modules/{Execution.objects.filter(parent=execution).first().module_id}/").json()

    assert body["success_rate"] == 1.0 and body["avg_latency"] == execution.duration_ms
    assert module["success_rate"] == 1.0  # a module's record is its steps


def test_a_version_snapshot_needs_steps(api, user):
    program = program_create(owner=user, name="empty")

    assert api.post(f"/api/programs/{program.pk}/versions/").status_code == 409


def test_corpus_and_documents_in_a_rag_run_stay_the_owners(api, user, other_user, lm):
    corpus_create(owner=other_user, name="theirs", documents=["secret"], embedding_lm=lm)
    make_module(user, lm=lm)

    response = api.post("/api/programs/", {"name": "p", "pipeline": rag_pipeline(corpus="theirs")}, format="json")

    assert response.status_code == 400
    assert response.json()["extra"]["path"] == "steps[0].parallel[0].corpus"


# --------------------------------------------------------------------------- composing: every compose-time error


@pytest.fixture
def composer(user, lm):
    """The modules and corpus the compose-time tests refer to."""
    make_module(user, "qa", spec="question: str -> answer: str", type_="predict", lm=lm)
    make_module(user, "rag_qa", lm=lm)
    make_module(user, "counter", spec="text: str -> count: int", type_="predict", lm=lm)
    corpus_create(owner=user, name="docs", documents=DOCUMENTS[:2], embedding_lm=lm)
    return user


def qa(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "module": "qa", **fields}


COMPOSE_ERRORS = [
    ({"steps": [{"id": "a", "module": "nope"}]}, "steps[0].module", "unknown module 'nope'"),
    ({"steps": [{"id": "a", "builtin": "retrieve", "corpus": "elsewhere"}]}, "steps[0].corpus", "unknown corpus"),
    ({"steps": [qa("a"), qa("a")]}, "steps[1].id", "duplicate step id 'a'"),
    ({"steps": [qa("a"), {"id": "g", "parallel": [qa("a")]}]}, "steps[1].parallel[0].id", "duplicate step id"),
    ({"steps": [qa("a", inputs={"question": "$b.answer"}), qa("b", inputs={"question": "$a.answer"})]},
     "steps[0].inputs.question", "cycle"),
    ({"steps": [qa("a", inputs={"question": "$a.answer"})]}, "steps[0].inputs.question", "cycle"),
    ({"steps": [qa("a", inputs={"question": "$b.answer"}), qa("b")]}, "steps[0].inputs.question",
     "forward reference"),
    ({"steps": [qa("a", inputs={"question": "$ghost.answer"})]}, "steps[0].inputs.question", "unbound reference"),
    ({"steps": [qa("a"), qa("b", inputs={"question": "$a.nothing"})]}, "steps[1].inputs.question",
     "has no output 'nothing'"),
    ({"steps": [{"id": "g", "parallel": [qa("a"), qa("b", inputs={"question": "$a.answer"})]}]},
     "steps[0].parallel[1].inputs.question", "same group"),
    ({"steps": [{"id": "g", "parallel": [qa("a")]}, qa("b", inputs={"question": "$g.answer"})]},
     "steps[1].inputs.question", "parallel group"),
    ({"steps": [{"id": "c", "module": "counter"}, qa("a", inputs={"question": "$c.count"})]},
     "steps[1].inputs.question", "type mismatch: $c.count is int, but this input needs str"),
    ({"steps": [qa("a"), {"id": "r", "module": "rag_qa", "inputs": {"context": "$a.answer"}}]},
     "steps[1].inputs.context", "type mismatch"),
    ({"steps": [qa("a", on_error={"fallback": {"answer": 3}})]}, "steps[0].on_error.fallback.answer",
     "does not fit str"),
    ({"steps": [{"id": "r", "module": "rag_qa", "on_error": {"fallback": {"answer": "x"}}}]},
     "steps[0].on_error.fallback", "missing output 'confidence'"),
    ({"steps": [qa("a", on_error={"fallback": {"answer": "x", "extra": 1}})]},
     "steps[0].on_error.fallback.extra", "no output 'extra'"),
    ({"steps": [qa("a", on_error={"fallback": "sorry"})]}, "steps[0].on_error.fallback", "JSON object"),
    ({"steps": [qa("a", on_error={"compensate": {"id": "b", "module": "counter"}})]},
     "steps[0].on_error.compensate", "does not produce output 'answer'"),
    ({"steps": [qa("a", on_error={"compensate": "qa"})]}, "steps[0].on_error.compensate", "step object"),
    ({"steps": [qa("a", on_error={"retry": 1})]}, "steps[0].on_error", "'on_error' must be"),
    ({"steps": [qa("a", on_error={"compensate": qa("b")}), qa("c", inputs={"question": "$b.answer"})]},
     "steps[1].inputs.question", "stands in for step 'a'"),
    ({"steps": [qa("a"), qa("b", inputs={"question": "$a.answer.text"})]}, "steps[1].inputs.question",
     "bad reference"),
    ({"steps": [qa("a"), qa("b", inputs={"question": "$a"})]}, "steps[1].inputs.question", "bind one output field"),
    ({"steps": [qa("a", inputs={"question": "$input"})]}, "steps[0].inputs.question", "bind one input field"),
    ({"steps": [qa("a", inputs={"nope": "$input.x"})]}, "steps[0].inputs.nope", "unknown input 'nope'"),
    ({"steps": [qa("a", inputs={"question": 5})]}, "steps[0].inputs.question", "constant 5 does not fit str"),
    ({"steps": [qa("a", inputs={"question": ["$input.q"]})]}, "steps[0].inputs.question", "list-typed input"),
    ({"steps": [qa("a", inputs=["$input.q"])]}, "steps[0].inputs", "JSON object"),
    ({"steps": [{"id": "a", "builtin": "rerank"}]}, "steps[0].builtin", "unknown builtin"),
    ({"steps": [{"id": "a", "builtin": "retrieve", "corpus": "docs", "k": 0}]}, "steps[0].k", "'k' must be"),
    ({"steps": [{"id": "a", "builtin": "retrieve", "corpus": "docs", "method": "grep"}]}, "steps[0].method",
     "'method' must be"),
    ({"steps": [{"id": "a", "builtin": "retrieve"}]}, "steps[0].corpus", "needs 'corpus'"),
    ({"steps": [qa("a", retries=9)]}, "steps[0].retries", "'retries' must be"),
    ({"steps": [qa("a", retries=True)]}, "steps[0].retries", "'retries' must be"),
    ({"steps": [qa("a", color="red")]}, "steps[0].color", "unknown key 'color'"),
    ({"steps": [{"id": "a", "module": "qa", "builtin": "merge"}]}, "steps[0]", "names a 'module' or a 'builtin'"),
    ({"steps": [{"id": "a"}]}, "steps[0]", "names a 'module'"),
    ({"steps": [{"id": "g", "parallel": [{"id": "h", "parallel": [qa("a")]}]}]}, "steps[0].parallel[0].parallel",
     "cannot be nested"),
    ({"steps": [{"id": "g", "parallel": []}]}, "steps[0].parallel", "non-empty"),
    ({"steps": [{"id": "g", "parallel": [qa("a")], "retries": 1}]}, "steps[0].retries", "parallel group"),
    ({"steps": []}, "steps", "non-empty list"),
    ({"steps": [qa("a")], "stages": []}, "stages", "unknown pipeline key"),
    ({"steps": [qa("1a")]}, "steps[0].id", "each step needs an 'id'"),
    ({"steps": [qa("input")]}, "steps[0].id", "reserved"),
    ({"steps": ["qa"]}, "steps[0]", "JSON object"),
    ({"steps": [qa("a")], "return": "$b.answer"}, "return", "unbound reference"),
    ({"steps": [qa("a")], "return": {"x": "$a.nope"}}, "return.x", "has no output 'nope'"),
]


@pytest.mark.parametrize(("pipeline", "path", "words"), COMPOSE_ERRORS)
def test_every_compose_time_error_is_a_400_with_its_json_path(api, composer, pipeline, path, words):
    response = api.post("/api/programs/", {"name": "p", "pipeline": pipeline}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["extra"]["path"] == path
    assert words in response.json()["message"]
    assert not Program.objects.exists()


def test_updating_a_pipeline_validates_it_and_a_draft_may_start_empty(api, composer):
    created = api.post("/api/programs/", {"name": "p"}, format="json")
    assert created.status_code == 201
    url = f"/api/programs/{created.json()['id']}/"

    bad = api.patch(url, {"pipeline": {"steps": [qa("a", inputs={"question": "$zzz.answer"})]}}, format="json")
    good = api.patch(url, {"pipeline": rag_pipeline()}, format="json")

    assert bad.status_code == 400 and bad.json()["extra"]["path"] == "steps[0].inputs.question"
    assert good.status_code == 200, good.json()
    assert Program.objects.get().pipeline == rag_pipeline()


def test_valid_specs_compose(api, composer):
    specs = [
        rag_pipeline(),
        {"steps": [qa("a"), qa("b", inputs={"question": "$a.answer"})], "return": {"first": "$a", "second": "$b"}},
        {"steps": [{"id": "c", "module": "counter", "inputs": {"text": "$input.question"}},
                   {"id": "m", "builtin": "merge", "k": 2, "inputs": {"lists": [["x"], "$input.more"]}}]},
        {"steps": [qa("a", on_error={"compensate": {"id": "b", "module": "rag_qa", "inputs": {"context": []}}})]},
    ]
    for index, spec in enumerate(specs):
        response = api.post("/api/programs/", {"name": f"p{index}", "pipeline": spec}, format="json")
        assert response.status_code == 201, (index, response.json())


# --------------------------------------------------------------------------- composing: never a 500

KEYS = ["steps", "id", "module", "builtin", "parallel", "inputs", "return", "on_error", "fallback", "compensate",
        "retries", "corpus", "method", "k", "question", "context", "lists", "answer", "query"]
WORDS = ["qa", "rag_qa", "counter", "retrieve", "merge", "bm25", "vector", "docs", "a", "b", "g", "input",
         "$input.question", "$input", "$a.answer", "$a", "$b.answer", "$g.answer", "$merge.passages", "$", "$$a.b",
         "$a.answer.x", "$input.0", ""]
scalars = st.none() | st.booleans() | st.integers(-3, 60) | st.floats(allow_nan=False, allow_infinity=False) | (
    st.sampled_from(WORDS) | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner,
                                                                max_size=5),
    max_leaves=25,
)
VALID = [
    rag_pipeline(),
    {"steps": [qa("a", retries=1, on_error={"compensate": {"id": "b", "module": "rag_qa", "inputs": {"context": []}}}),
               {"id": "g", "parallel": [{"id": "c", "module": "counter", "inputs": {"text": "$a.answer"}}, qa("d")]}],
     "return": {"count": "$c.count", "answer": "$d.answer", "all": ["$a.answer", "$d.answer"]}},
]


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """A valid spec with a few random edits: a key dropped, a value replaced, a step duplicated or moved."""
    spec = copy.deepcopy(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        containers = _containers(spec)
        container = draw(st.sampled_from(containers))
        keys = list(range(len(container))) if isinstance(container, list) else list(container)
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["replace", "drop", "duplicate"]))
        if action == "replace":
            container[key] = draw(json_values | st.sampled_from(WORDS))
        elif action == "drop":
            del container[key]
        elif isinstance(container, list):
            container.insert(draw(st.integers(0, len(container))), copy.deepcopy(container[key]))
    return spec


def _containers(value: Any) -> list[Any]:
    found = [value] if isinstance(value, dict | list) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        found.extend(_containers(child))
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pipeline=json_values | st.fixed_dictionaries({"steps": json_values}) | mutated_specs())
def test_random_pipeline_specs_never_cause_a_500(api, composer, pipeline):
    response = api.post("/api/programs/", {"name": uuid.uuid4().hex, "pipeline": pipeline}, format="json")

    assert response.status_code in (201, 400), (pipeline, response.content[:500])
    if response.status_code == 400:
        assert response.json()["message"]
