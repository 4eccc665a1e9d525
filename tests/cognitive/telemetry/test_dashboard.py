"""The operators' dashboard in the admin renders with data; budgets show what is left."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from cognitive.models import Heartbeat, HeartbeatKind, OptimizationRun, SpendBudget
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from tests.cognitive.telemetry.test_stats import finish

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def data(user):
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module = module_create(owner=user, name="qa", type="predict", signature=signature)
    program = program_activate(
        program=program_create(owner=user, name="dash-program", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
    for ms in (120, 240):
        finish(program, module, status="completed", duration_ms=ms, prompt=30, completion=10, cost=0.002, lm="dash-lm")
    finish(program, module, status="failed", duration_ms=900, prompt=5, completion=0, cost=0.001, lm="dash-lm")
    now = timezone.now()
    Heartbeat.objects.create(name="celery@worker-1", kind=HeartbeatKind.WORKER, queues=["executions"], seen_at=now)
    OptimizationRun.objects.create(
        owner=user, program=program, optimizer_type="labeled_few_shot", metric="exact_match", status="running",
        progress={"phase": "compiling", "trials_done": 3, "trials_planned": 8, "lm_calls": 17},
    )
    return program


@pytest.mark.parametrize("window", ["hour", "day", "week"])
def test_the_dashboard_shows_runs_cost_queue_workers_and_optimizations(admin_client, data, window):
    response = admin_client.get(f"/admin/dashboard/?window={window}")
    assert response.status_code == 200
    html = response.content.decode().split('id="content-main"')[1].split("<!-- END Content -->")[0]
    assert html.count("<svg") == 3  # runs per minute, failures, cost by program
    assert "<script" not in html and "http" not in html.split("</svg>")[0].replace("http://www.w3.org/2000/svg", "")
    summary = response.context["summary"]
    assert summary["runs"] == {"total": 3, "completed": 2, "failed": 1, "cancelled": 0}
    assert summary["tokens"]["total"] == 85 and summary["cost_usd"] == pytest.approx(0.005)
    assert summary["latency_ms"]["p95"] is not None
    assert "dash-program" in html and "dash-lm" in html
    assert "celery@worker-1" in html and "workers alive: 1" in html
    assert "compiling" in html and "3/8 trials" in html
    assert "queue depth: executions 0" in html
    failures = response.context["failures_chart"]
    assert "failures" in failures and "<rect" in failures


def test_the_dashboard_is_for_staff(client_for, user):
    client = Client()
    client.force_login(user)
    assert client.get("/admin/dashboard/").status_code == 302  # to the admin login


def test_the_program_page_shows_its_usage_and_budget(admin_client, data):
    SpendBudget.objects.create(program=data, daily_usd=Decimal("1"))
    page = admin_client.get(f"/admin/cognitive/program/{data.pk}/change/").content.decode()
    assert "3 runs (2 completed, 1 failed, 0 cancelled)" in page
    assert "85 tokens" in page and "$0.0050" in page and "daily $0.9950 of $1 left" in page


def test_the_budget_admin_shows_what_is_left(admin_client, data, user):
    budget = SpendBudget.objects.create(user=user, daily_usd=Decimal("0.01"), monthly_usd=Decimal("1"))
    page = admin_client.get(f"/admin/cognitive/spendbudget/{budget.pk}/change/").content.decode()
    assert "daily: $0.0050 spent, $0.0050 left" in page
    assert "monthly: $0.0050 spent, $0.9950 left" in page
    listing = admin_client.get("/admin/cognitive/spendbudget/").content.decode()
    assert "$0.0050 left" in listing
