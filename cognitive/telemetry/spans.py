"""OpenTelemetry spans: request → execution → step → LM call, with the GenAI semantic conventions.

Nothing is set up unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or a test hands in an exporter):
then the API's tracer is a no-op, no context is written into rows, and the hooks below return
at once. The trace context crosses the queue in the row (`Execution.trace_context`, a W3C
traceparent), so retries, the sweeper's re-publishing and multi-id messages keep it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from cognitive.engine.tracing import LMCallRecord

TRACER_NAME = "dspex"
_state: dict[str, Any] = {"provider": None}


def enabled() -> bool:
    return _state["provider"] is not None


def configure(exporter: Any = None) -> bool:
    """Install a tracer provider and instrument Django. Without an exporter, only when OTLP is configured."""
    if exporter is None and not settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        return False
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "dspex")}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _state["provider"] = provider
    DjangoInstrumentor().instrument(tracer_provider=provider)
    return True


def unconfigure() -> None:
    """Back to no tracing (tests)."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if _state["provider"] is not None:
        DjangoInstrumentor().uninstrument()
        _state["provider"].shutdown()
    _state["provider"] = None


def tracer() -> trace.Tracer:
    provider = _state["provider"]
    return provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()


def current_traceparent() -> str:
    """The W3C traceparent of the span in progress (the request's), to store with a queued run."""
    if not enabled():
        return ""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")[:100]


@contextlib.contextmanager
def execution_span(execution: Any) -> Iterator[None]:
    """Around one attempt of an execution; its parent is the request that asked for it (from the row)."""
    if not enabled():
        yield
        return
    parent = extract({"traceparent": execution.trace_context}) if execution.trace_context else None
    attributes = {
        "dspex.execution.id": str(execution.pk),
        "dspex.execution.attempt": execution.attempt,
        "dspex.program.id": str(execution.program_id or ""),
        "dspex.module.id": str(execution.module_id or ""),
    }
    with tracer().start_as_current_span(
        "dspex.execution", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ):
        yield


def step_scope_factory() -> Callable[[Any], contextlib.AbstractContextManager[Any]]:
    """For `PipelineEnv.step_scope`: a span per step, a child of the execution's span on whichever thread runs it."""
    if not enabled():
        return lambda step: contextlib.nullcontext()
    parent = otel_context.get_current()

    def scope(step: Any) -> contextlib.AbstractContextManager[Any]:
        return tracer().start_as_current_span(
            f"dspex.step {step.id}", context=parent,
            attributes={"dspex.step.id": step.id, "dspex.step.kind": step.kind, "dspex.module": step.module or ""},
        )

    return scope


def lm_call_span(record: LMCallRecord) -> None:
    """An LM call observer: one CLIENT span per call, under the step that made it."""
    if not enabled():
        return
    system = record.model.split("/", 1)[0] if "/" in record.model else "unknown"
    request_model = record.model.split("/", 1)[-1]
    span = tracer().start_span(
        f"chat {request_model}", kind=SpanKind.CLIENT, start_time=record.started_ns,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.provider.name": system,
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": record.response_model or request_model,
            "gen_ai.usage.input_tokens": record.prompt_tokens,
            "gen_ai.usage.output_tokens": record.completion_tokens,
            "dspex.lm": record.lm,
            "dspex.cost_usd": record.cost,
            "dspex.cache_hit": record.cache_hit,
        },
    )
    if record.error is not None:
        span.set_attribute("error.type", type(record.error).__name__)
        span.set_status(Status(StatusCode.ERROR, str(record.error)[:200]))
    span.end(end_time=record.ended_ns)
