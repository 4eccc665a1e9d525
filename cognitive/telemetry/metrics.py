"""The Prometheus metrics of the original design (`dspex.execution.*`, `dspex.llm.*`, `dspex.cache.*`).

Worker processes write them too: with `PROMETHEUS_MULTIPROC_DIR` set (the settings default it
to `var/metrics`), every process keeps its values in a file there and `/metrics` sums them.

Every label is bounded (docs/observability.md lists what each may take):
- program / module: a name, for at most DSPEX_METRICS_NAMED_PROGRAMS / _MODULES distinct names
  per process (first come), then "other"; with the setting at 0 the label is always "all".
- lm, model: LanguageModel rows, which only staff create.
- status, outcome, kind, type, cache, optimizer: fixed sets.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Histogram, values

# The value class is chosen when prometheus_client is first imported; pick it again in case that
# happened before the settings set PROMETHEUS_MULTIPROC_DIR (a library imported it early).
values.ValueClass = values.get_value_class()

RUN_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LM_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

EXECUTIONS = Counter("dspex_executions", "Top-level runs that reached a final state", ["program", "status"])
EXECUTION_DURATION = Histogram(
    "dspex_execution_duration_seconds", "Duration of finished top-level runs", ["program"], buckets=RUN_SECONDS
)
MODULE_EXECUTES = Counter(
    "dspex_module_executes", "Module executes (pipeline steps and single executes)", ["module", "type", "status"]
)
MODULE_DURATION = Histogram(
    "dspex_module_execute_duration_seconds", "Duration of module executes", ["type"], buckets=RUN_SECONDS
)
LM_REQUESTS = Counter("dspex_llm_requests", "LM calls", ["lm", "model", "outcome"])
LM_LATENCY = Histogram("dspex_llm_request_duration_seconds", "LM call latency", ["lm", "model"], buckets=LM_SECONDS)
LM_TOKENS = Counter("dspex_llm_tokens", "Tokens billed by LMs", ["lm", "model", "kind"])
LM_COST = Counter("dspex_llm_cost_usd", "Cost of LM calls in USD (LiteLLM's price map)", ["lm", "model"])
CACHE_REQUESTS = Counter("dspex_cache_requests", "Cache lookups", ["cache", "result"])
JOB_ATTEMPTS = Counter("dspex_job_attempts", "Job attempts by how they ended", ["kind", "outcome"])
RATE_LIMIT_SNOOZES = Counter("dspex_rate_limit_snoozes", "Jobs snoozed because an LM was rate limited", ["lm"])
OPTIMIZATION_RUNS = Counter(
    "dspex_optimization_runs", "Optimization runs that reached a final state", ["optimizer", "status"]
)
OPTIMIZATION_TRIALS = Counter("dspex_optimization_trials", "Candidates scored by optimization runs", ["optimizer"])

# The fixed label sets (documented; anything else is mapped to "other").
JOB_KINDS = ("execution", "optimization")
JOB_OUTCOMES = ("completed", "retry", "snooze", "worker-lost", "failed", "cancelled", "handed-off")
LM_OUTCOMES = ("ok", "cached", "rate_limited", "transient_error", "error", "stopped")
OTHER = "other"


class BoundedNames:
    """At most `limit` distinct names become label values in this process; later ones share "other"."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if self.limit <= 0:
            return "all"
        if not name:
            return "none"
        with self._lock:
            if name in self._seen:
                return name
            if len(self._seen) < self.limit:
                self._seen.add(name)
                return name
        return OTHER


def bounded(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER
