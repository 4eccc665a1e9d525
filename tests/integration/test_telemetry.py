"""Metrics from worker processes reach the web's /metrics (multiprocess mode); heartbeats; rollups from workers."""

from __future__ import annotations

import pytest

from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from cognitive.telemetry import metrics
from tests.cognitive.telemetry.helpers import scrape, value
from tests.factories import StaffFactory, UserFactory
from tests.integration.harness import wait_for
from tests.integration.test_durability import run_batch, wait_all_final

pytestmark = pytest.mark.integration


def test_queued_runs_done_by_a_worker_process_show_in_the_scrape(processes, client_for, local_lm):
    owner, staff = UserFactory(), StaffFactory()
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    module_create(owner=owner, name="qa", type="predict", signature=signature)
    program = program_activate(
        program=program_create(owner=owner, name="telemetry-int", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
    prometheus = client_for(staff)
    before = scrape(prometheus)

    processes.worker(concurrency=2)
    ids = run_batch(client_for, owner, program, 5)
    wait_all_final(ids, timeout=90, procs=processes)
    wait_for(lambda: value(scrape(prometheus), "dspex_workers_alive") >= 1, timeout=30, what="a worker heartbeat")
    after = scrape(prometheus)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # This process ran none of them: every count below was written by the worker process.
    assert metrics.EXECUTIONS.labels(program="telemetry-int", status="completed")._value.get() == 0
    assert delta("dspex_executions_total", program="telemetry-int", status="completed") == 5
    assert delta("dspex_job_attempts_total", kind="execution", outcome="completed") >= 5
    assert delta("dspex_llm_requests_total", lm="default", outcome="ok") >= 5
    assert delta("dspex_llm_tokens_total", lm="default", kind="prompt") > 0
    assert delta("dspex_module_executes_total", module="qa", status="completed") == 5
    assert value(after, "dspex_queue_depth", queue="executions") == 0

    stats = client_for(owner).get(f"/api/programs/{program.pk}/stats/").json()
    assert stats["runs"]["completed"] == 5 and stats["lm_calls"] >= 5 and stats["tokens"]["total"] > 0
