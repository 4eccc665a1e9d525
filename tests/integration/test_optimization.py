"""Optimization runs under the durability contract, with real worker processes on the optimization queue."""

from __future__ import annotations

from datetime import datetime

import pytest

from cognitive.models import OptimizationRun, OptimizationRunStatus, Program, ProgramStatus, ProgramVersion
from tests.factories import UserFactory
from tests.integration.harness import Processes, wait_for
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
