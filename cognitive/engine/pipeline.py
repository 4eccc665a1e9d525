"""Runs a `PipelinePlan`: stages in order, parallel groups on a bounded thread pool, and per step
retries, fallback or compensation. Knows nothing of the database: steps are reported to
`env.on_step` (on the calling thread) as they finish, and the caller stores them.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.dsp.utils.settings import thread_local_overrides

from cognitive.engine.errors import is_parse_failure, transient_failure
from cognitive.engine.plan import INPUT, Binding, Const, ListOf, PipelinePlan, Ref, Stage, StepPlan
from cognitive.engine.runner import OutputMismatch, PreparedModule, call_module
from cognitive.engine.tracing import STOP_CHECK, StepTrace, add_metrics, clip, error_info
from cognitive.engine.values import ValueMismatch, check_value
from cognitive.errors import ApplicationError, ExecutionFailed, RateLimited, RetryableError

MAX_WORKERS = 8
# Steps retry transient LM failures a little later; rate limits are never retried here (see _attempts).
RETRY_BASE_SECONDS = 0.2
RETRY_MAX_SECONDS = 2.0
RRF_K = 60

Retriever = Callable[..., list[str]]


@dataclass
class PipelineEnv:
    """What the engine needs from the caller to run steps."""

    modules: Mapping[str, PreparedModule]  # by step id, compensation steps included
    on_step: Callable[[StepRun], None]
    should_stop: Callable[[], bool] = lambda: False
    retrieve: Retriever | None = None  # retrieve(corpus=, method=, query=, k=) -> list[str]
    thread_exit: Callable[[], None] = lambda: None  # run at the end of each worker thread's task
    max_workers: int = MAX_WORKERS
    # Wraps each step's attempts, on the thread that runs them (the caller opens a span there).
    step_scope: Callable[[StepPlan], contextlib.AbstractContextManager[Any]] = lambda step: contextlib.nullcontext()


@dataclass
class StepRun:
    """One attempt sequence of one step: what the caller stores as a child execution."""

    step: StepPlan
    input: dict[str, Any]
    started_at: datetime.datetime
    status: str = "completed"
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    recovered_by: str | None = None  # "fallback" | "compensate"
    stands_in_for: str | None = None  # set on a compensation step's run
    trace: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    failure: BaseException | None = None  # the domain error to raise when nothing recovered the step

    def summary(self) -> dict[str, Any]:
        return {
            "type": "step",
            "step": self.step.id,
            "kind": self.step.kind,
            "module": self.step.module,
            "status": self.status,
            "attempts": self.attempts,
            "recovered_by": self.recovered_by,
            "stands_in_for": self.stands_in_for,
            "duration_ms": self.duration_ms,
            "lm_calls": self.metrics.get("lm_calls", 0),
            "total_tokens": self.metrics.get("total_tokens", 0),
            "error": self.error,
        }


@dataclass
class _StepOutcome:
    step: StepPlan
    runs: list[StepRun]
    output: Any = None
    failure: BaseException | None = None


@dataclass
class PipelineResult:
    output: Any
    runs: list[StepRun]
    metrics: dict[str, Any]


def cancelled() -> ExecutionFailed:
    return ExecutionFailed("cancelled", {"cancelled": True})


# --------------------------------------------------------------------------- the pipeline


def run_pipeline(plan: PipelinePlan, program_input: Mapping[str, Any], env: PipelineEnv) -> PipelineResult:
    with dspy.context(**{STOP_CHECK: env.should_stop}):
        return _run_stages(plan, program_input, env)


def _run_stages(plan: PipelinePlan, program_input: Mapping[str, Any], env: PipelineEnv) -> PipelineResult:
    values: dict[str, Any] = {INPUT: dict(program_input)}
    runs: list[StepRun] = []
    for index, stage in enumerate(plan.stages):
        # Before the first stage there is nothing to ask: the caller has only just started the run.
        if index and env.should_stop():
            raise cancelled()
        outcomes = _run_stage(stage, values, env)
        for outcome in outcomes:
            for run in outcome.runs:
                env.on_step(run)
                runs.append(run)
        failure = _first_failure(outcomes)
        if failure is not None:
            raise failure
        for outcome in outcomes:
            values[outcome.step.id] = outcome.output
    return PipelineResult(output=resolve(plan.returns, values), runs=runs, metrics=pipeline_metrics(runs))


def _first_failure(outcomes: list[_StepOutcome]) -> BaseException | None:
    """A failure retrying cannot fix wins: re-running the group would fail again anyway."""
    failures = [o.failure for o in outcomes if o.failure is not None]
    permanent = [f for f in failures if not isinstance(f, RetryableError)]
    return (permanent or failures or [None])[0]


def _run_stage(stage: Stage, values: Mapping[str, Any], env: PipelineEnv) -> list[_StepOutcome]:
    if not stage.parallel:
        return [_run_step(stage.steps[0], values, env)]
    # DSPy settings made with dspy.context are thread-local; like dspy.Parallel, copy the
    # caller's overrides into each worker so the steps see the same configuration.
    parent_overrides = thread_local_overrides.get().copy()

    def work(step: StepPlan) -> _StepOutcome:
        token = thread_local_overrides.set({**thread_local_overrides.get(), **parent_overrides})
        try:
            return _run_step(step, values, env)
        finally:
            thread_local_overrides.reset(token)
            env.thread_exit()

    workers = max(1, min(len(stage.steps), env.max_workers))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"dspex-{stage.id}") as pool:
        return list(pool.map(work, stage.steps))


def _run_step(step: StepPlan, values: Mapping[str, Any], env: PipelineEnv) -> _StepOutcome:
    run = _attempts(step, values, env)
    if run.status == "completed":
        return _StepOutcome(step, [run], output=run.output)
    if step.fallback is not None:
        run.output, run.recovered_by, run.failure = copy.deepcopy(dict(step.fallback)), "fallback", None
        return _StepOutcome(step, [run], output=run.output)
    if step.compensate is None:
        return _StepOutcome(step, [run], failure=run.failure)
    run.recovered_by = "compensate"
    compensation = _attempts(step.compensate, values, env)
    compensation.stands_in_for = step.id
    if compensation.status == "completed":
        run.failure = None
        output = {f.name: compensation.output.get(f.name) for f in step.outputs}
        return _StepOutcome(step, [run, compensation], output=output)
    failure = _compensation_failure(step, compensation)
    return _StepOutcome(step, [run, compensation], failure=failure)


def _compensation_failure(step: StepPlan, compensation: StepRun) -> BaseException:
    inner = compensation.failure
    assert inner is not None and step.compensate is not None
    prefix = f"step '{step.id}' failed and so did its compensation"
    if isinstance(inner, RateLimited):
        return RateLimited(f"{prefix}: {inner.message}", retry_after=inner.retry_after, lm=inner.lm)
    if isinstance(inner, RetryableError):
        return RetryableError(f"{prefix}: {inner.message}", retry_after=inner.retry_after)
    extra = dict(getattr(inner, "extra", {}) or {})
    return ExecutionFailed(
        f"{prefix}: {getattr(inner, 'message', inner)}",
        {**extra, "step": step.id, "compensation": step.compensate.id},
    )


# --------------------------------------------------------------------------- one step


def _attempts(step: StepPlan, values: Mapping[str, Any], env: PipelineEnv) -> StepRun:
    """Run the step up to 1 + retries times; never raises (the outcome is in the StepRun)."""
    with env.step_scope(step):
        return _attempt_loop(step, values, env)


def _attempt_loop(step: StepPlan, values: Mapping[str, Any], env: PipelineEnv) -> StepRun:
    trace = StepTrace()
    started = time.perf_counter()
    run = StepRun(step=step, input={}, started_at=datetime.datetime.now(datetime.UTC))
    failure: BaseException | None = None
    attempt = 0
    try:
        run.input = step_inputs(step, values)
    except Exception as exc:
        failure = exc
    else:
        for attempt in range(1, step.retries + 2):
            trace.attempt = attempt
            try:
                run.output = execute_step(step, run.input, trace, env)
            except Exception as exc:
                failure = exc
                trace.record({"type": "error", "error": error_info(exc)})
                transient = transient_failure(exc)
                # A rate limit is the whole run's to wait out (the job layer snoozes it), not this step's.
                if isinstance(transient, RateLimited) or attempt > step.retries:
                    break
                if transient is not None:
                    time.sleep(min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS))
            else:
                failure = None
                break
    run.attempts = attempt
    run.trace = trace.events()
    run.metrics = {**trace.metrics(), "attempts": attempt}
    run.duration_ms = round((time.perf_counter() - started) * 1000)
    if failure is not None:
        run.status, run.output = "failed", None
        run.error = error_info(failure)
        run.failure = step_failure(step, failure)
    return run


def step_inputs(step: StepPlan, values: Mapping[str, Any]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for input_field in step.inputs:
        value = resolve(step.bindings[input_field.name], values)
        try:
            inputs[input_field.name] = check_value(value, input_field.type, lenient=True)
        except ValueMismatch as exc:
            raise ExecutionFailed(
                f"step '{step.id}': input '{input_field.name}{exc.where}' got a value that does not fit "
                f"{input_field.type.render()}: {exc.message}",
                {"step": step.id, "field": input_field.name},
            ) from None
    return inputs


def execute_step(step: StepPlan, inputs: dict[str, Any], trace: StepTrace, env: PipelineEnv) -> dict[str, Any]:
    if step.kind == "module":
        return call_module(env.modules[step.id], inputs, trace)
    if step.kind == "merge":
        return {"passages": merge_passages(inputs["lists"], step.options.get("k"))}
    if step.kind == "retrieve":
        return _retrieve(step, inputs, trace, env)
    raise ExecutionFailed(f"step '{step.id}': unknown step kind '{step.kind}'", {"step": step.id})


def _retrieve(step: StepPlan, inputs: dict[str, Any], trace: StepTrace, env: PipelineEnv) -> dict[str, Any]:
    if env.retrieve is None:
        raise ExecutionFailed("retrieval is not available on this server", {"step": step.id})
    options = step.options
    started = time.perf_counter()
    passages = env.retrieve(corpus=options["corpus"], method=options["method"], query=inputs["query"], k=options["k"])
    passages = [str(p) for p in passages]
    trace.record(
        {
            "type": "retrieval",
            "corpus": options["corpus"],
            "method": options["method"],
            "k": options["k"],
            "query": clip(inputs["query"], 2_000),
            "found": len(passages),
            "latency_ms": round((time.perf_counter() - started) * 1000),
        }
    )
    return {"passages": passages}


def merge_passages(lists: list[list[str]], k: int | None = None) -> list[str]:
    """Reciprocal rank fusion: passages ranked high in several lists come first; duplicates merge."""
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for passages in lists:
        for rank, passage in enumerate(passages):
            scores[passage] = scores.get(passage, 0.0) + 1.0 / (RRF_K + rank + 1)
            first_seen.setdefault(passage, len(first_seen))
    ranked = sorted(scores, key=lambda p: (-scores[p], first_seen[p]))
    return ranked[:k] if k else ranked


def step_failure(step: StepPlan, exc: BaseException) -> BaseException:
    """The domain error a failed step becomes: rate limit, retryable, or final."""
    what = f"step '{step.id}'"
    transient = transient_failure(exc)
    if isinstance(transient, RateLimited):
        return RateLimited(f"{what}: {transient.message}", retry_after=transient.retry_after, lm=transient.lm)
    if transient is not None:
        return RetryableError(f"{what}: {transient.message}", retry_after=transient.retry_after)
    if isinstance(exc, ApplicationError):
        return type(exc)(exc.message, {**exc.extra, "step": step.id, "type": exc.extra.get("type", type(exc).__name__)})
    reason = "the LM's answer could not be parsed" if is_parse_failure(exc) else "failed"
    if isinstance(exc, OutputMismatch):
        reason = "the LM's answer does not fit the signature"
    detail = str(getattr(exc, "message", None) or exc).strip().splitlines()
    return ExecutionFailed(
        clip(f"{what} {reason}: {type(exc).__name__}: {detail[0] if detail else ''}", 1_000),
        {"step": step.id, "type": type(exc).__name__},
    )


# --------------------------------------------------------------------------- bindings and metrics


def resolve(binding: Binding, values: Mapping[str, Any]) -> Any:
    if isinstance(binding, Ref):
        source = values.get(binding.source)
        if binding.field is None:
            return copy.deepcopy(source)
        if not isinstance(source, Mapping):
            return None
        return copy.deepcopy(source.get(binding.field))
    if isinstance(binding, Const):
        return copy.deepcopy(binding.value)
    if isinstance(binding, ListOf):
        return [resolve(item, values) for item in binding.items]
    return {key: resolve(item, values) for key, item in binding.items}


def pipeline_metrics(runs: list[StepRun]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for run in runs:
        add_metrics(total, {k: v for k, v in run.metrics.items() if k != "attempts"})
    return {
        **total,
        "steps": len(runs),
        "failed_steps": sum(1 for run in runs if run.status == "failed"),
        "recovered_steps": sum(1 for run in runs if run.recovered_by),
    }


def run_module_once(
    prepared: PreparedModule, inputs: Mapping[str, Any], *, step_id: str, module_name: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> StepRun:
    """A single module execute, outside any pipeline: one step, no retries, no recovery."""
    step = StepPlan(
        id=step_id, path="", kind="module", inputs=prepared.inputs, outputs=prepared.outputs,
        bindings={f.name: Ref(INPUT, f.name, f"${INPUT}.{f.name}") for f in prepared.inputs}, module=module_name,
    )
    env = PipelineEnv(modules={step_id: prepared}, on_step=lambda run: None, should_stop=should_stop)
    with dspy.context(**{STOP_CHECK: should_stop}):
        return _attempts(step, {INPUT: dict(inputs)}, env)
