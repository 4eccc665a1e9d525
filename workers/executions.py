"""Execution tasks: load the row by id, call the service. Everything that matters is in the row."""

from __future__ import annotations

from celery import shared_task

from cognitive.services.jobs import execution_process, executions_process


@shared_task(name="workers.executions.run", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_execution(execution_id: str) -> str:
    return execution_process(execution_id=execution_id)


@shared_task(name="workers.executions.run_many", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_executions(execution_ids: list[str]) -> list[str]:
    return executions_process(execution_ids=execution_ids)
