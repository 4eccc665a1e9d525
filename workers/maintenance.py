"""Beat-driven safety nets: the sweeper re-publishes lost messages, the reaper frees dead workers' rows."""

from __future__ import annotations

from celery import shared_task

from cognitive.services.health import sweeper_ran
from cognitive.services.jobs import executions_reap, executions_sweep
from cognitive.services.optimization import optimization_runs_reap, optimization_runs_sweep


@shared_task(name="workers.maintenance.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    swept = executions_sweep()
    sweeper_ran()
    return swept


@shared_task(name="workers.maintenance.reap", ignore_result=True, soft_time_limit=60, time_limit=90)
def reap() -> int:
    return executions_reap()


@shared_task(name="workers.maintenance.sweep_optimizations", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep_optimizations() -> int:
    return optimization_runs_sweep()


@shared_task(name="workers.maintenance.reap_optimizations", ignore_result=True, soft_time_limit=60, time_limit=90)
def reap_optimizations() -> int:
    return optimization_runs_reap()
