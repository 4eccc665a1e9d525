"""Beat's safety nets for every job kind: the sweeper re-sends lost messages, the reaper frees dead workers' rows."""

from __future__ import annotations

from cognitive.services.execution_jobs import EXECUTIONS
from cognitive.services.health import sweeper_ran
from cognitive.services.jobs.maintenance import reap as reap_kind
from cognitive.services.jobs.maintenance import sweep as sweep_kind
from cognitive.services.optimization_jobs import OPTIMIZATION_RUNS
from workers.policy import maintenance_task


@maintenance_task
def sweep() -> int:
    swept = sweep_kind(EXECUTIONS)
    sweeper_ran()
    return swept


@maintenance_task
def reap() -> int:
    return reap_kind(EXECUTIONS)


@maintenance_task
def sweep_optimizations() -> int:
    return sweep_kind(OPTIMIZATION_RUNS, limit=100)


@maintenance_task
def reap_optimizations() -> int:
    return reap_kind(OPTIMIZATION_RUNS, limit=100)
