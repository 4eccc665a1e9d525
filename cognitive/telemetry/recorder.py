"""Turns what the job core and the traced LM report into Prometheus samples (labels bounded here)."""

from __future__ import annotations

import functools

from django.conf import settings

from cognitive.telemetry import metrics as m

# The job core's outcome words, as the metric spells them.
_OUTCOME_ALIASES = {"snoozed": "snooze", "succeeded": "completed"}


@functools.cache
def program_names() -> m.BoundedNames:
    return m.BoundedNames(settings.DSPEX_METRICS_NAMED_PROGRAMS)


@functools.cache
def module_names() -> m.BoundedNames:
    return m.BoundedNames(settings.DSPEX_METRICS_NAMED_MODULES)


def job_kind(label: str) -> str:
    """`execution` or `optimization` (the job kinds' labels are "execution" and "optimization run")."""
    return m.bounded(label.split(" ")[0], m.JOB_KINDS)


def count_attempt(kind_label: str, outcome: str, *, lm: str | None = None) -> None:
    outcome = _OUTCOME_ALIASES.get(outcome, outcome)
    m.JOB_ATTEMPTS.labels(kind=job_kind(kind_label), outcome=m.bounded(outcome, m.JOB_OUTCOMES)).inc()
    if outcome == "snooze":
        m.RATE_LIMIT_SNOOZES.labels(lm=lm or "unknown").inc()


def execution_finished(*, program: str | None, status: str, duration_ms: int | None) -> None:
    label = program_names().label(program)
    m.EXECUTIONS.labels(program=label, status=status).inc()
    if duration_ms is not None:
        m.EXECUTION_DURATION.labels(program=label).observe(duration_ms / 1000)


def module_executed(*, module: str | None, module_type: str, status: str, duration_ms: int) -> None:
    m.MODULE_EXECUTES.labels(module=module_names().label(module), type=module_type or "none", status=status).inc()
    m.MODULE_DURATION.labels(type=module_type or "none").observe(duration_ms / 1000)


def lm_call(
    *, lm: str, model: str, outcome: str, seconds: float, prompt_tokens: int, completion_tokens: int, cost: float
) -> None:
    lm, model = lm or "unnamed", model or "unknown"
    m.LM_REQUESTS.labels(lm=lm, model=model, outcome=m.bounded(outcome, m.LM_OUTCOMES)).inc()
    m.LM_LATENCY.labels(lm=lm, model=model).observe(seconds)
    if prompt_tokens:
        m.LM_TOKENS.labels(lm=lm, model=model, kind="prompt").inc(prompt_tokens)
    if completion_tokens:
        m.LM_TOKENS.labels(lm=lm, model=model, kind="completion").inc(completion_tokens)
    if cost:
        m.LM_COST.labels(lm=lm, model=model).inc(cost)
    m.CACHE_REQUESTS.labels(cache="lm", result="hit" if outcome == "cached" else "miss").inc()


def cache_lookup(cache: str, hit: bool) -> None:
    m.CACHE_REQUESTS.labels(cache=cache, result="hit" if hit else "miss").inc()


def optimization_finished(*, optimizer: str, status: str, trials: int) -> None:
    m.OPTIMIZATION_RUNS.labels(optimizer=optimizer, status=status).inc()
    if trials:
        m.OPTIMIZATION_TRIALS.labels(optimizer=optimizer).inc(trials)
