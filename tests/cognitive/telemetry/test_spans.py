"""OpenTelemetry: one queued run's span tree hangs under the request that submitted it, across the queue."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cognitive.models import Execution
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from cognitive.telemetry import spans
from tests.factories import LanguageModelFactory
from workers import executions as execution_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def exporter():
    exporter = InMemorySpanExporter()
    spans.configure(exporter=exporter)
    yield exporter
    spans.unconfigure()


@pytest.fixture
def program(user, local_lm):
    lm = LanguageModelFactory(name="traced-lm", api_base=local_lm.url)
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="first", type="predict", signature=signature, lm=lm)
    module_create(owner=user, name="second", type="predict", signature=signature, lm=lm)
    pipeline = {
        "steps": [
            {"id": "a", "module": "first"},
            {"id": "b", "module": "second", "inputs": {"question": "$a.answer"}},
        ],
        "return": "$b",
    }
    return program_activate(program=program_create(owner=user, name="traced", pipeline=pipeline))


def test_a_queued_runs_spans_hang_under_the_submitting_request(exporter, api, program):
    response = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "2+2?"}}, format="json")
    assert response.status_code == 202
    execution = Execution.objects.get(pk=response.json()["execution"])
    assert execution.trace_context.startswith("00-")  # a W3C traceparent crossed the queue in the row
    (request_span,) = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]

    # What a worker does with the message (the task function, as Celery calls it).
    assert execution_tasks.run(str(execution.pk)) == "completed"

    finished = exporter.get_finished_spans()
    (run_span,) = [s for s in finished if s.name == "dspex.execution"]
    steps = {s.name: s for s in finished if s.name.startswith("dspex.step ")}
    lm_spans = [s for s in finished if s.attributes.get("gen_ai.operation.name") == "chat"]

    trace_id = request_span.context.trace_id
    assert run_span.context.trace_id == trace_id
    assert run_span.parent.span_id == request_span.context.span_id
    assert run_span.attributes["dspex.execution.id"] == str(execution.pk)
    assert set(steps) == {"dspex.step a", "dspex.step b"}
    assert all(s.parent.span_id == run_span.context.span_id for s in steps.values())
    assert len(lm_spans) == 2
    step_ids = {s.context.span_id for s in steps.values()}
    for lm_span in lm_spans:
        assert lm_span.context.trace_id == trace_id
        assert lm_span.parent.span_id in step_ids
        assert lm_span.attributes["gen_ai.request.model"] == "local"
        assert lm_span.attributes["gen_ai.system"] == "openai"
        assert lm_span.attributes["gen_ai.usage.input_tokens"] > 0
        assert lm_span.attributes["gen_ai.usage.output_tokens"] > 0
        assert lm_span.attributes["dspex.lm"] == "traced-lm"


def test_without_a_configured_exporter_nothing_is_traced(api, program):
    assert not spans.enabled()
    response = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "2+2?"}}, format="json")
    assert Execution.objects.get(pk=response.json()["execution"]).trace_context == ""


def test_otlp_export_starts_only_when_the_endpoint_is_set(tmp_path):
    from tests.cognitive.telemetry.test_logs import _settings_process

    code = "import django; django.setup(); from cognitive.telemetry import spans; print(spans.enabled())"
    on = _settings_process(tmp_path, code, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    assert on.returncode == 0, on.stderr
    assert on.stdout.strip() == "True"
    assert _settings_process(tmp_path, code).stdout.strip() == "False"
