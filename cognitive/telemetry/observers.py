"""The hooks the engine and the process caches call, registered once per process by `cognitive.apps`."""

from __future__ import annotations

from cognitive.engine.errors import transient_failure
from cognitive.engine.tracing import LMCallRecord, RunStopped, add_lm_observer
from cognitive.errors import RateLimited
from cognitive.lru import observe_lookups
from cognitive.telemetry import recorder, spans


def lm_outcome(record: LMCallRecord) -> str:
    if record.error is None:
        return "cached" if record.cache_hit else "ok"
    if isinstance(record.error, RunStopped):
        return "stopped"
    transient = transient_failure(record.error)
    if isinstance(transient, RateLimited):
        return "rate_limited"
    return "transient_error" if transient is not None else "error"


def lm_call_metrics(record: LMCallRecord) -> None:
    recorder.lm_call(
        lm=record.lm, model=record.model, outcome=lm_outcome(record), seconds=record.seconds,
        prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens, cost=record.cost,
    )


def install() -> None:
    add_lm_observer(lm_call_metrics)
    add_lm_observer(spans.lm_call_span)
    observe_lookups(recorder.cache_lookup)
    spans.configure()
