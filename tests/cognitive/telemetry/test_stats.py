"""Stats from the usage rollups, checked against a known set of runs finished through the job core; budgets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cognitive.models import Execution, ExecutionStatus, SpendBudget, UsageRollup
from cognitive.services.execution_jobs import EXECUTIONS, execution_process
from cognitive.services.jobs import core
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def usage(prompt: int, completion: int, cost: float, lm: str = "gpt") -> dict:
    return {
        "lm_calls": 1, "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost,
        "by_lm": {lm: {"lm_calls": 1, "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost,
                       "latency_ms": 40}},
    }


def finish(program, module, *, status: str, duration_ms: int, prompt: int, completion: int, cost: float, lm="gpt"):
    """A run claimed, one step written, and finished by the job core (the path workers take)."""
    row = Execution.objects.create(owner=program.owner, program=program, input={"question": "q"})
    job = core.claim(EXECUTIONS, row.pk, worker_id="test")
    metrics = usage(prompt, completion, cost, lm)
    Execution.objects.create(
        owner=program.owner, parent=row, program=program, module=module, step_id="qa", attempt=job.attempt,
        status=ExecutionStatus.COMPLETED if status == "completed" else ExecutionStatus.FAILED,
        duration_ms=duration_ms, metrics=metrics,
    )
    if status == "completed":
        run_metrics = {k: v for k, v in metrics.items() if k != "by_lm"}
        assert core.complete(
            EXECUTIONS, job, status=ExecutionStatus.COMPLETED, metrics=run_metrics, duration_ms=duration_ms,
            output={"answer": "a"},
        )
    else:
        Execution.objects.filter(pk=row.pk).update(metrics=metrics, duration_ms=duration_ms)
        assert core.fail(EXECUTIONS, job, {"type": "ExecutionFailed", "message": "no"})
    return row


@pytest.fixture
def setup(user):
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module = module_create(owner=user, name="qa", type="predict", signature=signature)
    program = program_activate(
        program=program_create(owner=user, name="stats", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
    return program, module


def test_program_stats_match_the_runs(api, setup):
    program, module = setup
    for ms in (100, 200, 300, 400):
        finish(program, module, status="completed", duration_ms=ms, prompt=10, completion=5, cost=0.01)
    finish(program, module, status="failed", duration_ms=5000, prompt=20, completion=0, cost=0.02, lm="other")

    body = api.get(f"/api/programs/{program.pk}/stats/").json()

    assert body["runs"] == {"total": 5, "completed": 4, "failed": 1, "cancelled": 0}
    assert body["success_rate"] == 0.8
    assert body["lm_calls"] == 5
    assert body["tokens"] == {"prompt": 60, "completion": 20, "total": 80}
    assert body["cost_usd"] == pytest.approx(0.06)
    # Interpolated in the histogram's buckets: the median of 100..400 and 5000 ms is in (200, 300].
    assert 200 < body["latency_ms"]["p50"] <= 300
    assert 4000 < body["latency_ms"]["p95"] <= 6000
    assert body["latency_ms"]["mean"] == 1200.0
    by_lm = {row["lm"]: row for row in body["by_lm"]}
    assert by_lm["gpt"]["lm_calls"] == 4 and by_lm["gpt"]["cost_usd"] == pytest.approx(0.04)
    assert by_lm["other"]["tokens"]["prompt"] == 20
    (step,) = body["by_module"]
    assert step["module"] == str(module.pk) and step["runs"]["total"] == 5
    assert body["budget"] is None

    module_body = api.get(f"/api/modules/{module.pk}/stats/").json()
    assert module_body["runs"]["total"] == 5 and module_body["tokens"]["total"] == 80
    mine = api.get("/api/stats/").json()
    assert mine["runs"]["total"] == 5 and mine["by_program"][0]["program"] == str(program.pk)


def test_a_window_before_the_runs_is_empty_and_bad_since_is_400(api, setup):
    program, module = setup
    finish(program, module, status="completed", duration_ms=100, prompt=1, completion=1, cost=0.0)
    assert api.get(f"/api/programs/{program.pk}/stats/?since=7d").json()["runs"]["total"] == 1
    future = api.get(f"/api/programs/{program.pk}/stats/?since=2999-01-01T00:00:00Z").json()
    assert future["runs"]["total"] == 0 and future["success_rate"] is None
    bad = api.get(f"/api/programs/{program.pk}/stats/?since=yesterday")
    assert bad.status_code == 400 and bad.json()["extra"] == {"field": "since"}
    assert api.get(f"/api/programs/{program.pk}/stats/?since=9999d").status_code == 400


def test_stats_of_someone_elses_program_are_404(client_for, setup):
    program, _ = setup
    assert client_for(UserFactory()).get(f"/api/programs/{program.pk}/stats/").status_code == 404
    assert client_for().get(f"/api/programs/{program.pk}/stats/").status_code == 401


def test_lm_stats_are_the_callers_own_unless_staff(client_for, setup, staff):
    program, module = setup
    lm = LanguageModelFactory(name="gpt")
    finish(program, module, status="completed", duration_ms=100, prompt=7, completion=3, cost=0.5)
    assert client_for(program.owner).get(f"/api/lms/{lm.pk}/stats/").json()["tokens"]["total"] == 10
    assert client_for(UserFactory()).get(f"/api/lms/{lm.pk}/stats/").json()["lm_calls"] == 0
    assert client_for(staff).get(f"/api/lms/{lm.pk}/stats/").json()["cost_usd"] == 0.5


def test_concurrent_finishes_add_to_one_rollup_row(setup):
    program, module = setup
    for _ in range(3):
        finish(program, module, status="completed", duration_ms=100, prompt=1, completion=1, cost=0.1)
    run_rows = UsageRollup.objects.filter(scope="run", program_id=program.pk)
    assert run_rows.count() == 1 and run_rows.get().runs == 3


# --------------------------------------------------------------------------- budgets


def test_a_run_past_the_programs_budget_is_429_and_accepted_runs_still_run(api, client_for, staff, user, local_lm):
    lm = LanguageModelFactory(name="budget-lm", api_base=local_lm.url)
    signature = signature_create(owner=user, name="bqa", spec="question: str -> answer: str")
    module = module_create(owner=user, name="bqa", type="predict", signature=signature, lm=lm)
    program = program_activate(
        program=program_create(owner=user, name="budgeted", pipeline={"steps": [{"id": "qa", "module": "bqa"}]})
    )
    created = client_for(staff).post(
        "/api/budgets/", {"program": str(program.pk), "daily_usd": "1.00", "monthly_usd": "10"}, format="json"
    )
    assert created.status_code == 201, created.content
    # Two runs accepted while the budget is not spent yet.
    accepted = [
        api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": f"q{i}"}}, format="json")
        for i in range(2)
    ]
    assert [r.status_code for r in accepted] == [202, 202]
    # Then a finished run spends the whole daily budget.
    finish(program, module, status="completed", duration_ms=100, prompt=100, completion=50, cost=1.25)

    refused = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "more"}}, format="json")
    assert refused.status_code == 429
    message = refused.json()["message"]
    assert "daily budget of program 'budgeted' ($1)" in message and "resets at" in message
    assert refused.json()["extra"]["remaining_usd"] == 0
    assert api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "x"}, "wait": True},
                    format="json").status_code == 429
    # The runs accepted before are not lost: a worker still runs them.
    assert [execution_process(execution_id=r.json()["execution"]) for r in accepted] == ["completed", "completed"]

    stats = api.get(f"/api/programs/{program.pk}/stats/").json()
    daily, monthly = stats["budget"]["periods"]
    assert (daily["period"], daily["limit_usd"], daily["remaining_usd"]) == ("daily", 1.0, 0)
    assert monthly["remaining_usd"] == pytest.approx(10 - daily["spent_usd"])


def test_a_users_budget_covers_module_executes_too(api, client_for, staff, user, setup):
    program, module = setup
    SpendBudget.objects.create(user=user, daily_usd=Decimal("0.05"))
    finish(program, module, status="completed", duration_ms=100, prompt=1, completion=1, cost=0.05)
    refused = api.post(f"/api/modules/{module.pk}/execute/", {"input": {"question": "q"}}, format="json")
    assert refused.status_code == 429 and f"user '{user.username}'" in refused.json()["message"]
    assert api.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": "q"}]},
                    format="json").status_code == 429
    mine = api.get("/api/budgets/").json()
    assert mine["results"][0]["periods"][0]["spent_usd"] == pytest.approx(0.05)


def test_only_staff_set_budgets(api, user, setup):
    program, _ = setup
    response = api.post("/api/budgets/", {"program": str(program.pk), "daily_usd": "1"}, format="json")
    assert response.status_code == 403


def test_a_budget_names_one_subject_and_a_finite_amount(client_for, staff, user, setup):
    program, _ = setup
    both = client_for(staff).post(
        "/api/budgets/", {"program": str(program.pk), "user": user.pk, "daily_usd": "1"}, format="json"
    )
    assert both.status_code == 400
    negative = client_for(staff).post("/api/budgets/", {"user": user.pk, "daily_usd": "-1"}, format="json")
    assert negative.status_code == 400
