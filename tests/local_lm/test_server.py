"""The server over real HTTP, driven through DSPy -> (lm15 | LiteLLM) -> HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

import dspy
import litellm
import numpy as np
import openai
import pytest
from dspy.utils.exceptions import AdapterParseError, LMRateLimitError, LMServerError

from local_lm.responder import model_answer, oracle_answer
from local_lm.server import LocalLMServer

# The root conftest loads this too; naming it here keeps the module runnable with --noconftest.
pytest_plugins = ["tests.fixtures_local_lm"]

REPO_ROOT = Path(__file__).resolve().parents[2]

# LiteLLM's lazy imports build pydantic models that warn about ReadOnly TypedDict items: noise, not findings.
pytestmark = pytest.mark.filterwarnings("ignore:Items? .* using the `ReadOnly` qualifier:UserWarning")


def make_lm(server: LocalLMServer, **kwargs: Any) -> dspy.LM:
    return dspy.LM("openai/local", api_base=server.url, api_key="local", cache=False, num_retries=0, **kwargs)


def http_json(url: str, body: dict | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) for a GET, or a POST when ``body`` is given; HTTP errors are returned too."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def exception_chain(exc: BaseException) -> list[BaseException]:
    chain = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


# --------------------------------------------------------------------------- DSPy programs end to end


@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_predict_answers_with_the_model_answer(local_lm: LocalLMServer, engine: str) -> None:
    question = "What is 12 + 7?"
    with dspy.context(lm=make_lm(local_lm, engine=engine)):
        prediction = dspy.Predict("question -> answer")(question=question)
    assert prediction.answer == model_answer({"question": question}, demo_count=0)
    assert local_lm.stats()["chat_requests"] == 1


def test_chain_of_thought_returns_typed_int_and_float(local_lm: LocalLMServer) -> None:
    with dspy.context(lm=make_lm(local_lm)):
        prediction = dspy.ChainOfThought("question: str -> answer: int, confidence: float")(question="What is 6 * 7?")
    assert isinstance(prediction.reasoning, str) and prediction.reasoning
    assert prediction.answer in (42, 43)
    assert isinstance(prediction.confidence, float) and 0.0 <= prediction.confidence <= 1.0


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_a_rag_prompt_is_answered_from_its_context(local_lm: LocalLMServer, adapter: dspy.Adapter) -> None:
    context = ["DSPex runs DSPy programs on Django.", "Paris is the capital of France, and the Seine flows through it."]
    rag = dspy.ChainOfThought("question: str, context: list[str] -> answer: str, confidence: float")

    with dspy.context(lm=make_lm(local_lm), adapter=adapter):
        answers = [rag(question="What is the capital of France?", context=context) for _ in range(2)]

    assert [a.answer for a in answers] == ["Paris", "Paris"]  # from the passage, and the same every time
    assert answers[0].confidence == 0.9


class Triage(dspy.Signature):
    """Triage the ticket."""

    ticket: str = dspy.InputField()
    tags: list[str] = dspy.OutputField()
    urgent: bool = dspy.OutputField()
    escalate: Literal["yes", "no"] = dspy.OutputField()
    word_counts: dict[str, int] = dspy.OutputField()


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
@pytest.mark.parametrize("engine", ["auto", "litellm"])
def test_structured_outputs_parse_with_python_types(local_lm: LocalLMServer, adapter: Any, engine: str) -> None:
    with dspy.context(lm=make_lm(local_lm, engine=engine), adapter=adapter):
        prediction = dspy.Predict(Triage)(ticket="Printer on fire in the printer room")
    assert prediction.tags == ["printer", "on", "fire"]
    assert isinstance(prediction.urgent, bool)
    assert prediction.escalate in ("yes", "no")
    assert prediction.word_counts == {"printer": 2, "on": 1, "fire": 1}
    assert local_lm.stats()["chat_requests"] == 1  # parsed first time: no JSON fallback round trip


def test_json_adapter_sends_response_format_over_litellm(local_lm: LocalLMServer) -> None:
    lm = make_lm(local_lm, engine="litellm")
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict("question -> answer: int")(question="What is 2 + 2?")
    assert "response_format" in lm.history[-1]["kwargs"]
    assert prediction.answer in (4, 5)


def test_fail_parse_marker_surfaces_as_adapter_parse_error(local_lm: LocalLMServer) -> None:
    signature = dspy.Signature("question -> answer", instructions="LOCAL_LM_FAIL_PARSE")
    with dspy.context(lm=make_lm(local_lm)), pytest.raises(AdapterParseError):
        dspy.Predict(signature)(question="anything")
    assert local_lm.stats()["chat_requests"] == 2  # ChatAdapter, then its JSONAdapter fallback


def test_demos_raise_accuracy_on_arithmetic(local_lm: LocalLMServer) -> None:
    rng = random.Random(7)
    questions = [f"What is {rng.randint(1, 99)} {rng.choice('+-*')} {rng.randint(1, 99)}?" for _ in range(50)]
    demos = [dspy.Example(question=f"What is {a} + {a}?", answer=str(2 * a)) for a in (3, 5, 8, 13)]

    def accuracy(predict: dspy.Predict) -> float:
        with dspy.context(lm=make_lm(local_lm)):
            hits = sum(predict(question=q).answer == oracle_answer({"question": q}) for q in questions)
        return hits / len(questions)

    baseline = dspy.Predict("question -> answer")
    optimized = dspy.Predict("question -> answer")
    optimized.demos = demos
    baseline_accuracy, optimized_accuracy = accuracy(baseline), accuracy(optimized)
    assert optimized_accuracy == 1.0  # 4 demos: threshold 100
    assert baseline_accuracy < 0.6  # 0 demos: threshold 30 (a fixed 50-question sample lands near it)
    assert optimized_accuracy > baseline_accuracy


def test_concurrent_requests_are_counted_in_flight(local_lm: LocalLMServer) -> None:
    local_lm.configure(latency_ms=300)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(question: str) -> None:
        try:
            with dspy.context(lm=make_lm(local_lm)):
                barrier.wait(timeout=5)
                dspy.Predict("question -> answer")(question=question)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(q,)) for q in ("What is 1 + 1?", "What is 2 + 2?")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    stats = local_lm.stats()
    assert stats["max_in_flight"] >= 2
    assert stats["in_flight"] == 0


def test_dspy_streaming_receives_the_answer_field(local_lm: LocalLMServer) -> None:
    question = "Name the largest ocean on the planet"
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    program = dspy.streamify(dspy.Predict("question -> answer"), stream_listeners=[listener])

    async def collect() -> tuple[str, dspy.Prediction]:
        streamed, final = "", None
        with dspy.context(lm=make_lm(local_lm)):
            async for item in program(question=question):
                if isinstance(item, dspy.streaming.StreamResponse):
                    streamed += item.chunk
                elif isinstance(item, dspy.Prediction):
                    final = item
        return streamed, final

    streamed, final = asyncio.run(collect())
    assert final.answer == model_answer({"question": question}, demo_count=0)
    assert streamed.strip() == final.answer


# --------------------------------------------------------------------------- embeddings


def test_embedder_is_deterministic_and_similar_texts_are_closer(local_lm: LocalLMServer) -> None:
    embedder = dspy.Embedder("openai/local-embed", api_base=local_lm.url, api_key="local", caching=False)
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew"]
    vectors = embedder(texts)
    assert vectors.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    np.testing.assert_array_equal(embedder(texts[0]), vectors[0])
    assert local_lm.stats()["embedding_requests"] == 2


def test_embeddings_endpoint_accepts_a_string_and_reports_usage(local_lm: LocalLMServer) -> None:
    status, body, _ = http_json(f"{local_lm.url}/embeddings", {"model": "local-embed", "input": "hello big world"})
    assert status == 200
    assert len(body["data"]) == 1 and len(body["data"][0]["embedding"]) == 64
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert body["model"] == "local-embed"


# --------------------------------------------------------------------------- injected failures


def test_injected_429_carries_retry_after_and_is_a_litellm_rate_limit_error(local_lm: LocalLMServer) -> None:
    local_lm.configure(fail_429_rate=1.0, retry_after_s=2)
    status, body, headers = http_json(f"{local_lm.url}/chat/completions", {"model": "local", "messages": []})
    assert status == 429 and headers["Retry-After"] == "2"
    assert body["error"]["type"] == "rate_limit_error"

    with pytest.raises(litellm.RateLimitError) as raised:
        litellm.completion(model="openai/local", api_base=local_lm.url, api_key="local", num_retries=0,
                           messages=[{"role": "user", "content": "hi"}])
    assert raised.value.response.headers["retry-after"] == "2"

    with dspy.context(lm=make_lm(local_lm, engine="litellm")), pytest.raises(LMRateLimitError) as wrapped:
        dspy.Predict("question -> answer")(question="hi")
    assert wrapped.value.retry_after == 2.0
    assert any(isinstance(e, litellm.RateLimitError) for e in exception_chain(wrapped.value))

    with dspy.context(lm=make_lm(local_lm)), pytest.raises(LMRateLimitError):
        dspy.Predict("question -> answer")(question="hi")
    assert local_lm.stats()["failures_injected"]["429"] == 4  # num_retries=0: nobody retried


def test_injected_500_is_an_internal_server_error(local_lm: LocalLMServer) -> None:
    local_lm.configure(fail_500_rate=1.0)
    with pytest.raises(litellm.InternalServerError) as raised:
        litellm.completion(model="openai/local", api_base=local_lm.url, api_key="local", num_retries=0,
                           messages=[{"role": "user", "content": "hi"}])
    assert isinstance(raised.value, openai.APIError)
    with dspy.context(lm=make_lm(local_lm)), pytest.raises(LMServerError):
        dspy.Predict("question -> answer")(question="hi")


def test_injected_timeout_hangs_until_the_client_gives_up_and_stop_interrupts_it(local_lm: LocalLMServer) -> None:
    local_lm.configure(timeout_rate=1.0)
    with pytest.raises(litellm.Timeout):
        litellm.completion(model="openai/local", api_base=local_lm.url, api_key="local", num_retries=0, timeout=0.3,
                           messages=[{"role": "user", "content": "hi"}])
    assert local_lm.stats()["failures_injected"]["timeout"] == 1
    local_lm.stop()  # must not wait out the 30 s hang
    assert local_lm.stats()["in_flight"] == 0


def test_failure_draws_are_reproducible_for_a_seed(local_lm: LocalLMServer) -> None:
    def outcomes() -> list[int]:
        body = {"model": "local", "messages": [{"role": "user", "content": "hi"}]}
        return [http_json(f"{local_lm.url}/chat/completions", body)[0] for _ in range(20)]

    local_lm.configure(fail_429_rate=0.3, fail_500_rate=0.2, seed=11)
    first = outcomes()
    local_lm.configure(seed=11)
    assert outcomes() == first
    assert {200, 429, 500} <= set(first)


# --------------------------------------------------------------------------- control endpoints and lifecycle


def test_config_stats_and_models_over_http(local_lm: LocalLMServer) -> None:
    status, config, _ = http_json(f"{local_lm.base_url}/config", {"latency_ms": 5, "fail_500_rate": 0.25})
    assert status == 200 and config["latency_ms"] == 5 and config["fail_500_rate"] == 0.25
    assert local_lm.config()["fail_500_rate"] == 0.25

    status, error, _ = http_json(f"{local_lm.base_url}/config", {"latency": 5})
    assert status == 400 and "unknown knob" in error["error"]["message"]
    assert http_json(f"{local_lm.base_url}/config", {"fail_429_rate": 1.5})[0] == 400

    status, models, _ = http_json(f"{local_lm.url}/models")
    assert status == 200 and {m["id"] for m in models["data"]} >= {"local", "local-embed"}

    status, stats, _ = http_json(f"{local_lm.base_url}/stats")
    assert stats == {"requests": 1, "chat_requests": 0, "embedding_requests": 0, "in_flight": 0,
                     "max_in_flight": 0, "failures_injected": {"429": 0, "500": 0, "timeout": 0}}
    status, stats, _ = http_json(f"{local_lm.base_url}/stats/reset", {})
    assert status == 200 and stats["requests"] == 0


def test_chat_completion_shape_and_streaming(local_lm: LocalLMServer) -> None:
    body = {"model": "my-model", "messages": [{"role": "user", "content": "What is 3 * 3?"}]}
    status, completion, _ = http_json(f"{local_lm.url}/chat/completions", body)
    assert status == 200 and completion["model"] == "my-model"
    content = completion["choices"][0]["message"]["content"]
    assert completion["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}

    chunks = litellm.completion(model="openai/local", api_base=local_lm.url, api_key="local", stream=True,
                                messages=body["messages"])
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == content


def test_bad_requests_get_openai_style_400s(local_lm: LocalLMServer) -> None:
    status, body, _ = http_json(f"{local_lm.url}/chat/completions", {"model": "local", "messages": "hi"})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert http_json(f"{local_lm.url}/nowhere", {})[0] == 404


PUBLIC_HOSTS = ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", ""]  # noqa: S104 (refusing them is the point)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        LocalLMServer(host=host)


def test_loopback_aliases_are_accepted() -> None:
    with LocalLMServer(host="localhost") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert http_json(f"{server.base_url}/health")[0] == 200
    assert LocalLMServer(host="127.0.0.2").host == "127.0.0.2"


def test_ipv6_loopback_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")
    try:
        server = LocalLMServer(host="::1").start()
    except OSError:
        pytest.skip("::1 cannot be bound here")
    try:
        assert server.url.startswith("http://[::1]:")
        assert http_json(f"{server.base_url}/health")[0] == 200
    finally:
        server.stop()


def test_lifecycle_errors_are_explicit() -> None:
    server = LocalLMServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
    server.stop()  # idempotent


def test_session_fixture_serves(local_lm_session: LocalLMServer) -> None:
    assert http_json(f"{local_lm_session.base_url}/health")[1] == {"status": "ok"}


# --------------------------------------------------------------------------- command line


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_python_m_local_lm_serves_until_terminated() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_lm", "--port", str(port), "--latency-ms", "1", "--fail-429-rate", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stats = None
        for _ in range(100):
            try:
                stats = http_json(f"http://127.0.0.1:{port}/stats")[1]
                break
            except OSError:
                time.sleep(0.05)
        assert stats is not None and stats["requests"] == 0
        assert http_json(f"http://127.0.0.1:{port}/v1/models")[0] == 200
    finally:
        process.terminate()
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}/v1" in stdout


def test_cli_refuses_a_public_host() -> None:
    result = subprocess.run([sys.executable, "-m", "local_lm", "--host", "0.0.0.0"],  # noqa: S104
                            cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "refusing" in result.stderr


def test_management_command_shares_the_cli_options() -> None:
    from local_lm.management.commands.run_local_lm import Command

    parser = Command().create_parser("manage.py", "run_local_lm")
    options = vars(parser.parse_args(["--port", "8765", "--latency-ms", "200", "--fail-429-rate", "0.5",
                                      "--fail-500-rate", "0", "--timeout-rate", "0", "--retry-after", "1"]))
    assert options["port"] == 8765 and options["latency_ms"] == 200 and options["fail_429_rate"] == 0.5
    assert options["retry_after"] == 1 and options["host"] == "127.0.0.1"
