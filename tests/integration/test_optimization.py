"""Optimization runs under the durability contract, with real worker processes on the optimization queue."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from cognitive.models import OptimizationRun, OptimizationRunStatus, Program, ProgramStatus, ProgramVersion
from cognitive.services.jobs.publishing import send_task
from tests.factories import UserFactory
from tests.integration.harness import Processes, can_restart_postgresql, restart_postgresql, wait_for
from tests.optimization_helpers import make_dataset, make_program

pytestmark = pytest.mark.integration

CONFIG = {"max_bootstrapped_demos": 2, "max_labeled_demos": 2, "num_candidate_programs": 6}


def optimization_worker(processes: Processes, name: str):
    # The same command as production's optimization workers: one run at a time per process.
    return processes._spawn(
        "worker",
        [
            "worker", "--pool=threads", "--concurrency=1", "-Q", "optimization,default", "--loglevel=WARNING",
            "-n", f"{name}{len(processes.procs)}@%h", "--without-gossip", "--without-mingle",
        ],
    )


def test_a_sigkilled_optimization_worker_is_reaped_and_another_finishes_the_run(processes, client_for, local_lm):
    processes.env["DSPEX_OPTIMIZATION_LEASE_SECONDS"] = "3"
    local_lm.configure(latency_ms=60)
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    dataset = make_dataset(program)
    response = client_for(owner).post(
        f"/api/programs/{program.pk}/optimize/",
        {"optimizer": "bootstrap_random_search", "dataset": str(dataset.pk), "metric": "exact_match", "config": CONFIG},
        format="json",
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["optimization_run"]["id"]

    def row() -> OptimizationRun:
        return OptimizationRun.objects.get(pk=run_id)

    doomed = optimization_worker(processes, "doomed")
    try:
        wait_for(
            lambda: row().status == OptimizationRunStatus.RUNNING and row().progress.get("optimizer_lm_calls", 0) > 10,
            timeout=60, what="the optimizer to be under way",
        )
    except AssertionError:
        print(row().progress, processes.logs())
        raise
    Processes.kill(doomed)
    assert row().status == OptimizationRunStatus.RUNNING  # the killed worker could not say anything

    optimization_worker(processes, "rescuer")
    processes.beat()
    try:
        wait_for(lambda: row().status == OptimizationRunStatus.SUCCEEDED, timeout=120, what="the run to finish")
    except AssertionError:
        print(row().status, row().log, processes.logs())
        raise

    run = row()
    assert run.attempt == 2
    assert [a["outcome"] for a in run.attempts] == ["worker-lost", "succeeded"]
    lost, finished = run.attempts
    assert "doomed" in lost["worker"] or lost["worker"] != finished["worker"]
    # Never two at once: the second attempt was claimed only after the first was reaped.
    assert datetime.fromisoformat(finished["started_at"]) >= datetime.fromisoformat(lost["ended_at"])
    assert ProgramVersion.objects.filter(program=program).count() == 1
    assert run.result_version is not None and run.final_score is not None
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    assert any("worker lost during attempt 1; queued again" in line for line in run.log)


# The same faults the executions face (tests/integration/test_durability.py), through the same job core.

SUCCEEDED, CANCELLED = OptimizationRunStatus.SUCCEEDED, OptimizationRunStatus.CANCELLED


def start_optimization(client_for, owner, program, config=CONFIG) -> str:
    response = client_for(owner).post(
        f"/api/programs/{program.pk}/optimize/",
        {"optimizer": "bootstrap_random_search", "dataset": str(make_dataset(program).pk), "metric": "exact_match",
         "config": config},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()["optimization_run"]["id"]


def wait_final(run_id: str, processes: Processes, *, timeout: float = 120) -> OptimizationRun:
    final = (SUCCEEDED, CANCELLED, OptimizationRunStatus.FAILED)
    try:
        wait_for(lambda: OptimizationRun.objects.get(pk=run_id).status in final, timeout=timeout, what="the run")
    except AssertionError:
        run = OptimizationRun.objects.get(pk=run_id)
        print(run.status, run.progress, run.log, processes.logs())
        raise
    return OptimizationRun.objects.get(pk=run_id)


def wait_under_way(run_id: str) -> None:
    wait_for(
        lambda: OptimizationRun.objects.get(pk=run_id).progress.get("optimizer_lm_calls", 0) > 5,
        timeout=60, what="the optimizer to be under way",
    )


def assert_succeeded_once(run: OptimizationRun) -> None:
    assert run.status == SUCCEEDED, (run.error, run.log)
    assert [a["outcome"] for a in run.attempts].count("succeeded") == 1
    assert ProgramVersion.objects.filter(program=run.program).count() == 1
    assert Program.objects.get(pk=run.program_id).status == ProgramStatus.ACTIVE


def test_redis_restart_with_a_queued_optimization_loses_nothing(processes, broker, client_for, local_lm):
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    run_id = start_optimization(client_for, owner, program)
    broker.restart()  # the message is gone; the row is not
    optimization_worker(processes, "w")
    processes.beat()
    run = wait_final(run_id, processes)
    assert_succeeded_once(run)
    assert run.attempt == 1


def test_duplicate_deliveries_of_an_optimization_run_it_once(processes, client_for, local_lm):
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    run_id = start_optimization(client_for, owner, program)
    for _ in range(3):
        send_task("workers.optimization.run", args=[run_id])
    optimization_worker(processes, "a")
    optimization_worker(processes, "b")
    run = wait_final(run_id, processes)
    assert_succeeded_once(run)
    assert run.attempt == 1 and len(run.attempts) == 1


def test_a_rate_limit_storm_snoozes_the_run_without_using_attempts(processes, client_for, local_lm):
    local_lm.configure(fail_429_rate=1.0, retry_after_s=0)
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    run_id = start_optimization(client_for, owner, program)
    optimization_worker(processes, "w")
    processes.beat()
    wait_for(
        lambda: any(a["outcome"] == "snoozed" for a in OptimizationRun.objects.get(pk=run_id).attempts),
        timeout=60, what="the run to snooze",
    )
    local_lm.configure(fail_429_rate=0.0)  # the storm passes
    run = wait_final(run_id, processes)
    assert_succeeded_once(run)
    assert run.attempt == 1, "snoozes must not use attempts"
    assert local_lm.stats()["failures_injected"]["429"] >= 1


def test_cancelling_a_running_optimization_through_the_api_stops_its_worker(processes, client_for, local_lm):
    processes.env["DSPEX_OPTIMIZATION_PROGRESS_SECONDS"] = "0.1"  # the keeper notices the cancel within this
    local_lm.configure(latency_ms=60)
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    config = {**CONFIG, "num_candidate_programs": 30}
    run_id = start_optimization(client_for, owner, program, config)
    optimization_worker(processes, "w")
    wait_under_way(run_id)
    assert client_for(owner).post(f"/api/optimization-runs/{run_id}/cancel/").status_code == 200
    time.sleep(1)  # ten renewals: the worker has seen its claim gone, and the calls in flight have ended
    calls = local_lm.stats()["chat_requests"]
    time.sleep(2)  # a running optimizer (30 candidates, 4 threads) would call the LM dozens of times here
    assert local_lm.stats()["chat_requests"] == calls, "the worker kept calling the LM after the cancel"
    run = OptimizationRun.objects.get(pk=run_id)
    assert run.status == CANCELLED and run.result_version is None
    assert not ProgramVersion.objects.filter(program=program).exists()
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


@pytest.mark.skipif(
    not can_restart_postgresql(), reason="restarts the shared PostgreSQL: CI, or DSPEX_TEST_RESTART_POSTGRES=1"
)
def test_postgresql_restart_during_an_optimization_loses_and_doubles_nothing(processes, client_for, local_lm):
    processes.env["DSPEX_OPTIMIZATION_LEASE_SECONDS"] = "3"  # a worker whose connection died is reaped soon
    local_lm.configure(latency_ms=40)
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    run_id = start_optimization(client_for, owner, program)
    optimization_worker(processes, "w")
    processes.beat()
    wait_under_way(run_id)
    restart_postgresql()
    run = wait_final(run_id, processes, timeout=180)
    assert_succeeded_once(run)
