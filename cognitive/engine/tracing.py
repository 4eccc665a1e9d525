"""What a step did, call by call: LM calls recorded by `TracedLM`, tool calls by a DSPy callback.

`TracedLM` opens an `lm_call` event around each call (`recording_lm_call`) on the step's
`StepTrace`, which `call_module` puts in DSPy's settings under `STEP_TRACE`; DSPy then hands
usage and cost to `TracedLM.update_history` and to the step's usage tracker while the call is
open, and both are joined to the event by the call id in `_ACTIVE_LM_CALL`. The trace is a
DSPy callback only for modules with tools: with any callback registered, DSPy inspects the
arguments of every module, adapter and LM call, which cost a fast run more than its own
bookkeeping.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.usage_tracker import UsageTracker

from cognitive.engine.errors import notes_of

logger = logging.getLogger(__name__)

# The dspy.context key under which the running step's StepTrace is found.
STEP_TRACE = "dspex_step_trace"
# The dspy.context key under which a run's stop check is found; TracedLM asks it before each call.
STOP_CHECK = "dspex_should_stop"


class RunStopped(BaseException):
    """Raised instead of an LM call when the run must stop (cancelled, its claim lost, out of time).

    A BaseException on purpose: DSPy's modules and adapters catch `Exception` and would carry on
    (an adapter retries with another format), so only the calls already in flight complete.
    """


def raise_if_stopped() -> None:
    check = dspy.settings.get(STOP_CHECK)
    if check is not None and check():
        raise RunStopped()
# The LM call in progress on this thread (its event id), for usage and cost to join.
_ACTIVE_LM_CALL: ContextVar[str | None] = ContextVar("dspex_active_lm_call", default=None)

# Traces are stored in a JSON column: a runaway prompt must not make the row enormous.
MAX_TEXT = 20_000
_TOKEN_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def to_json(value: Any, depth: int = 0, *, limit: int | None = MAX_TEXT) -> Any:
    """A JSON-safe copy of a DSPy value (Predictions, pydantic models, tuples, sets).

    Text is clipped to `limit` characters for traces; state snapshots pass `limit=None`.
    """
    if depth > 20:
        return clip(repr(value), 200)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return clip(value, limit) if limit else value
    if isinstance(value, Mapping):
        return {str(k): to_json(v, depth + 1, limit=limit) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v, depth + 1, limit=limit) for v in value]
    if hasattr(value, "model_dump"):
        return to_json(value.model_dump(), depth + 1, limit=limit)
    if hasattr(value, "toDict"):
        return to_json(value.toDict(), depth + 1, limit=limit)
    text = str(value)
    return clip(text, limit) if limit else text


def error_info(exc: BaseException) -> dict[str, Any]:
    message = getattr(exc, "message", None) or str(exc)
    return {"type": type(exc).__name__, "message": clip(f"{message}{notes_of(exc)}", 2_000)}


class _StepUsage(UsageTracker):
    """DSPy's tracker, thread-safe, also keeping each call's usage under the LM call it belongs to."""

    def __init__(self, owner: StepTrace) -> None:
        super().__init__()
        self._owner = owner
        self._lock = threading.Lock()

    def add_usage(self, lm: str, usage_entry: dict[str, Any]) -> None:
        with self._lock:
            super().add_usage(lm, usage_entry)
        self._owner._add_call_usage(_ACTIVE_LM_CALL.get(), usage_entry)

    def __deepcopy__(self, memo: dict[int, Any]) -> _StepUsage:
        # dspy.Parallel deep-copies trackers per thread; usage must still land in this step.
        return self


class StepTrace(BaseCallback):
    """Collects the LM and tool calls of one pipeline step (or one module execute)."""

    def __init__(self) -> None:
        self.usage = _StepUsage(self)
        self.attempt = 1
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._open: dict[str, tuple[dict[str, Any], float]] = {}

    # -- LM calls (from recording_lm_call)

    def lm_started(self, call_id: str, instance: Any, prompt: Any, messages: Any) -> None:
        messages = messages or [{"role": "user", "content": prompt or ""}]
        event = {
            "type": "lm_call",
            "attempt": self.attempt,
            "lm": lm_name(instance),
            "model": getattr(instance, "model", type(instance).__name__),
            "messages": to_json(messages),
            "response": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "cost": 0.0,
            "latency_ms": 0,
            "cache_hit": False,
            "error": None,
        }
        self._start(call_id, event)

    def lm_finished(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        event = self._finish(call_id, exception)
        if event is not None and exception is None:
            event["response"] = to_json(outputs[0] if isinstance(outputs, list) and len(outputs) == 1 else outputs)

    # -- DSPy callback hooks (registered only for modules with tools)

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        event = {
            "type": "tool_call",
            "attempt": self.attempt,
            "tool": getattr(instance, "name", type(instance).__name__),
            "args": to_json(inputs.get("kwargs", inputs)),
            "result": None,
            "latency_ms": 0,
            "error": None,
        }
        self._start(call_id, event)

    def on_tool_end(self, call_id: str, outputs: Any, exception: BaseException | None = None) -> None:
        event = self._finish(call_id, exception)
        if event is not None and exception is None:
            event["result"] = to_json(outputs)

    # -- joins from TracedLM and the usage tracker

    def add_lm_entry(self, call_id: str | None, entry: Mapping[str, Any]) -> None:
        event = self._open_event(call_id)
        if event is None:
            return
        usage = entry.get("usage") or {}
        event["cost"] = float(entry.get("cost") or 0.0)
        # Cached answers carry no usage: DSPy only bills calls that reached the provider.
        event["cache_hit"] = not usage
        if entry.get("response_model"):
            event["response_model"] = entry["response_model"]

    def _add_call_usage(self, call_id: str | None, usage: Mapping[str, Any]) -> None:
        event = self._open_event(call_id)
        if event is None:
            return
        for key in _TOKEN_KEYS:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                event[key] += value

    def record(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append({"attempt": self.attempt, **event})

    # -- results

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self._events]

    def metrics(self) -> dict[str, Any]:
        return summarize(self.events(), self.usage)

    # -- plumbing

    def _start(self, call_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)
            self._open[call_id] = (event, time.perf_counter())

    def _finish(self, call_id: str, exception: BaseException | None) -> dict[str, Any] | None:
        with self._lock:
            opened = self._open.pop(call_id, None)
        if opened is None:
            return None
        event, started = opened
        event["latency_ms"] = round((time.perf_counter() - started) * 1000)
        if exception is not None:
            event["error"] = error_info(exception)
        return event

    def _open_event(self, call_id: str | None) -> dict[str, Any] | None:
        with self._lock:
            opened = self._open.get(call_id or "")
        return opened[0] if opened else None


def _traces_in_scope() -> list[StepTrace]:
    """The running step's trace, and any StepTrace registered as a callback (an optimization's meter)."""
    found: list[StepTrace] = []
    step = dspy.settings.get(STEP_TRACE)
    if isinstance(step, StepTrace):
        found.append(step)
    for callback in dspy.settings.get("callbacks") or ():
        if isinstance(callback, StepTrace) and callback is not step:
            found.append(callback)
    return found


@dataclass
class LMCallOutcome:
    outputs: Any = None
    entry: Mapping[str, Any] | None = None  # what DSPy handed to update_history (usage, cost)


@dataclass(frozen=True)
class LMCallRecord:
    """One finished LM call, as LM call observers get it (metrics, spans)."""

    lm: str  # the LanguageModel's name
    model: str  # the provider model string
    started_ns: int  # time.time_ns()
    ended_ns: int
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    cost: float
    cache_hit: bool
    response_model: str
    error: BaseException | None


# Called with every finished LM call; registered at startup by the application (the engine knows none).
_LM_OBSERVERS: list[Callable[[LMCallRecord], None]] = []
_ACTIVE_OUTCOME: ContextVar[LMCallOutcome | None] = ContextVar("dspex_active_lm_outcome", default=None)


def add_lm_observer(observer: Callable[[LMCallRecord], None]) -> None:
    if observer not in _LM_OBSERVERS:
        _LM_OBSERVERS.append(observer)


def remove_lm_observer(observer: Callable[[LMCallRecord], None]) -> None:
    if observer in _LM_OBSERVERS:
        _LM_OBSERVERS.remove(observer)


def lm_name(instance: Any) -> str:
    limits = getattr(instance, "limits", None)
    return str(limits[0]) if limits else ""


@contextmanager
def recording_lm_call(instance: Any, prompt: Any, messages: Any) -> Iterator[LMCallOutcome]:
    """Around one LM call: an `lm_call` event on the running step's trace, finished with the outputs or error."""
    step = dspy.settings.get(STEP_TRACE)
    call_id = uuid.uuid4().hex
    if isinstance(step, StepTrace):
        step.lm_started(call_id, instance, prompt, messages)
    token = _ACTIVE_LM_CALL.set(call_id)
    outcome = LMCallOutcome()
    outcome_token = _ACTIVE_OUTCOME.set(outcome)
    started_ns, started = time.time_ns(), time.perf_counter()
    error: BaseException | None = None
    try:
        yield outcome
    except BaseException as exc:
        error = exc
        if isinstance(step, StepTrace):
            step.lm_finished(call_id, None, exc)
        raise
    else:
        if isinstance(step, StepTrace):
            step.lm_finished(call_id, outcome.outputs)
    finally:
        _ACTIVE_LM_CALL.reset(token)
        _ACTIVE_OUTCOME.reset(outcome_token)
        if _LM_OBSERVERS:
            _notify(_record(instance, outcome, started_ns, time.perf_counter() - started, error))


def _record(
    instance: Any, outcome: LMCallOutcome, started_ns: int, seconds: float, error: BaseException | None
) -> LMCallRecord:
    entry = outcome.entry or {}
    usage = entry.get("usage") or {}
    return LMCallRecord(
        lm=lm_name(instance),
        model=str(getattr(instance, "model", "")),
        started_ns=started_ns,
        ended_ns=started_ns + int(seconds * 1e9),
        seconds=seconds,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cost=float(entry.get("cost") or 0.0),
        # Cached answers carry no usage: DSPy only bills calls that reached the provider.
        cache_hit=error is None and outcome.entry is not None and not usage,
        response_model=str(entry.get("response_model") or ""),
        error=error,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _notify(record: LMCallRecord) -> None:
    for observer in list(_LM_OBSERVERS):
        try:
            observer(record)
        except Exception:
            # Telemetry must never fail a run.
            logger.exception("LM call observer %r failed", observer)


def record_lm_entry(entry: Mapping[str, Any]) -> None:
    """Called by TracedLM for each finished LM call; hands it to the step that made it."""
    call_id = _ACTIVE_LM_CALL.get()
    outcome = _ACTIVE_OUTCOME.get()
    if outcome is not None:
        outcome.entry = entry
    for trace in _traces_in_scope():
        trace.add_lm_entry(call_id, entry)


def summarize(events: Iterable[Mapping[str, Any]], usage: UsageTracker | None = None) -> dict[str, Any]:
    """Totals over a step's events. Billed tokens come from the usage tracker when there is one."""
    lm_calls = [e for e in events if e.get("type") == "lm_call"]
    totals: dict[str, Any] = {key: sum(e.get(key, 0) for e in lm_calls) for key in _TOKEN_KEYS}
    if usage is not None:
        billed = list(usage.get_total_tokens().values())
        for key in _TOKEN_KEYS:
            tracked = sum(int(u.get(key) or 0) for u in billed)
            totals[key] = max(totals[key], tracked)
    return {
        "lm_calls": len(lm_calls),
        "failed_lm_calls": sum(1 for e in lm_calls if e.get("error")),
        **totals,
        "cost": round(sum(float(e.get("cost") or 0.0) for e in lm_calls), 8),
        "lm_latency_ms": sum(int(e.get("latency_ms") or 0) for e in lm_calls),
        "cache_hits": sum(1 for e in lm_calls if e.get("cache_hit")),
        "by_lm": by_lm(lm_calls),
    }


def by_lm(lm_calls: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Calls, tokens, cost and latency per LM name: what the usage rollups count per LM."""
    totals: dict[str, dict[str, Any]] = {}
    for event in lm_calls:
        row = totals.setdefault(
            str(event.get("lm") or event.get("model") or ""),
            {"lm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "latency_ms": 0},
        )
        row["lm_calls"] += 1
        row["prompt_tokens"] += int(event.get("prompt_tokens") or 0)
        row["completion_tokens"] += int(event.get("completion_tokens") or 0)
        row["cost"] = round(row["cost"] + float(event.get("cost") or 0.0), 8)
        row["latency_ms"] += int(event.get("latency_ms") or 0)
    return totals


def add_metrics(total: dict[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in part.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
    if "cost" in total:
        total["cost"] = round(total["cost"], 8)
    return total
