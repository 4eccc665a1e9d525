"""/metrics: staff only, the original design's metrics after sync and queued runs, DB gauges at scrape time."""

from __future__ import annotations

import pytest

from cognitive.models import Execution, Heartbeat, HeartbeatKind
from cognitive.services.execution_jobs import execution_process
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from tests.cognitive.telemetry.helpers import scrape, value
from tests.factories import LanguageModelFactory

# Transactional: metrics of a final state are recorded when its transaction commits.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def program(user, local_lm):
    lm = LanguageModelFactory(name="metrics-lm", api_base=local_lm.url)
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="metrics-qa", type="predict", signature=signature, lm=lm)
    pipeline = {"steps": [{"id": "qa", "module": "metrics-qa"}]}
    return program_activate(program=program_create(owner=user, name="metrics-program", pipeline=pipeline))


def test_metrics_are_for_staff_only(client_for, user, staff):
    assert client_for().get("/metrics").status_code == 401
    assert client_for(user).get("/metrics").status_code == 403
    assert client_for(staff).get("/metrics").status_code == 200


def test_the_metrics_url_can_be_turned_off(client_for, staff, settings):
    settings.DSPEX_METRICS_URL = False
    assert client_for(staff).get("/metrics").status_code == 404


def test_sync_and_queued_runs_show_in_the_metrics(api, client_for, staff, program):
    prometheus = client_for(staff)
    before = scrape(prometheus)

    sync = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "2+2?"}, "wait": True}, format="json")
    assert sync.status_code == 200, sync.content
    queued = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "3+3?"}}, format="json")
    assert queued.status_code == 202
    pending = scrape(prometheus)
    assert value(pending, "dspex_queue_depth", queue="executions") == 1
    # The worker's entry point, in this process (tests/integration runs it in real worker processes).
    assert execution_process(execution_id=queued.json()["execution"]) == "completed"
    after = scrape(prometheus)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dspex_executions_total", program="metrics-program", status="completed") == 2
    assert delta("dspex_execution_duration_seconds_count", program="metrics-program") == 2
    assert delta("dspex_module_executes_total", module="metrics-qa", type="predict", status="completed") == 2
    assert delta("dspex_llm_requests_total", lm="metrics-lm", model="openai/local", outcome="ok") >= 2
    assert delta("dspex_llm_request_duration_seconds_count", lm="metrics-lm") >= 2
    assert delta("dspex_llm_tokens_total", lm="metrics-lm", kind="prompt") > 0
    assert delta("dspex_llm_tokens_total", lm="metrics-lm", kind="completion") > 0
    assert delta("dspex_job_attempts_total", kind="execution", outcome="completed") == 2
    assert delta("dspex_cache_requests_total", cache="plans") >= 2
    assert value(after, "dspex_queue_depth", queue="executions") == 0
    assert value(after, "dspex_runs_in_flight", kind="execution") == 0
    assert Execution.objects.filter(parent__isnull=True, status="completed").count() == 2


def test_rate_limit_snoozes_are_counted_by_lm(client_for, staff, user, local_lm):
    lm = LanguageModelFactory(name="tight-lm", api_base=local_lm.url, rpm=1)
    signature = signature_create(owner=user, name="qa-rl", spec="question: str -> answer: str")
    module_create(owner=user, name="rl-qa", type="predict", signature=signature, lm=lm)
    program = program_activate(
        program=program_create(owner=user, name="rl-program", pipeline={"steps": [{"id": "qa", "module": "rl-qa"}]})
    )
    api = client_for(user)
    before = scrape(client_for(staff))
    url = f"/api/programs/{program.pk}/run/"
    ids = [api.post(url, {"input": {"question": f"q{i}"}}, format="json").json()["execution"] for i in range(2)]
    outcomes = [execution_process(execution_id=i) for i in ids]
    after = scrape(client_for(staff))
    assert outcomes == ["completed", "snoozed"]
    assert value(after, "dspex_rate_limit_snoozes_total", lm="tight-lm") - value(
        before, "dspex_rate_limit_snoozes_total", lm="tight-lm"
    ) == 1
    assert value(after, "dspex_job_attempts_total", kind="execution", outcome="snooze") > value(
        before, "dspex_job_attempts_total", kind="execution", outcome="snooze"
    )


def test_workers_alive_come_from_heartbeats(client_for, staff):
    from django.utils import timezone

    now = timezone.now()
    Heartbeat.objects.create(name="w1@host", kind=HeartbeatKind.WORKER, seen_at=now)
    Heartbeat.objects.create(name="w2@host", kind=HeartbeatKind.WORKER, seen_at=now - timezone.timedelta(hours=1))
    assert value(scrape(client_for(staff)), "dspex_workers_alive") == 1


def test_optimization_runs_are_counted_by_optimizer_and_status(client_for, staff, program):
    from cognitive.models import OptimizationRun
    from cognitive.services.jobs import core
    from cognitive.services.optimization_jobs import OPTIMIZATION_RUNS

    run = OptimizationRun.objects.create(
        owner=program.owner, program=program, optimizer_type="bootstrap_few_shot", metric="exact_match",
        trials=[{"n": 1, "score": 0.5}, {"n": 2, "score": 0.7}],
    )
    before = scrape(client_for(staff))
    core.cancel(OPTIMIZATION_RUNS, run.pk)
    after = scrape(client_for(staff))
    labels = {"optimizer": "bootstrap_few_shot", "status": "cancelled"}
    assert value(after, "dspex_optimization_runs_total", **labels) - value(
        before, "dspex_optimization_runs_total", **labels
    ) == 1
