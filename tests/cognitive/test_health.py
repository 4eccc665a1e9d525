"""`/healthz` and `/readyz`: public, JSON, each check listed, 503 until the stack can do its work."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from cognitive.models import Heartbeat
from cognitive.services.health import sweeper_ran, worker_heartbeat, worker_stopped

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_credentials_or_queries(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


def test_readyz_lists_every_check_and_is_503_without_workers_or_sweeps(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    checks = body["checks"]
    assert set(checks) == {"database", "cache", "broker", "workers", "sweeper"}
    assert checks["database"]["ok"] and checks["cache"]["ok"] and checks["broker"]["ok"]
    assert checks["workers"] == {"ok": False, "live_workers": 0, "within_seconds": 60,
                                 "queues_without_a_worker": ["default", "executions", "optimization"]}
    assert checks["sweeper"]["ok"] is False and checks["sweeper"]["last_run_seconds_ago"] is None


def test_readyz_names_a_queue_no_live_worker_consumes(client):
    worker_heartbeat(node="executions@host", queues=["executions", "default"])
    sweeper_ran()

    not_yet = client.get("/readyz")
    worker_heartbeat(node="optimization@host", queues=["optimization"])
    ready = client.get("/readyz")

    assert not_yet.status_code == 503
    assert not_yet.json()["checks"]["workers"]["queues_without_a_worker"] == ["optimization"]
    assert ready.status_code == 200, ready.json()
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["workers"]["live_workers"] == 2


def test_old_heartbeats_and_stopped_workers_do_not_count(client, settings):
    worker_heartbeat(node="all@host", queues=["default", "executions", "optimization"])
    sweeper_ran()
    assert client.get("/readyz").status_code == 200

    Heartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=settings.DSPEX_READY_WORKER_SECONDS + 1))
    stale = client.get("/readyz").json()["checks"]
    assert stale["workers"]["ok"] is False and stale["workers"]["live_workers"] == 0
    assert stale["sweeper"]["ok"] is False and stale["sweeper"]["last_run_seconds_ago"] > 60

    worker_heartbeat(node="all@host", queues=["default", "executions", "optimization"])
    worker_stopped(node="all@host")
    assert client.get("/readyz").json()["checks"]["workers"]["live_workers"] == 0


def test_a_failing_check_fails_alone_and_reveals_no_secret(client, settings):
    settings.CELERY_BROKER_URL = "redis://:hunter2-broker@127.0.0.1:1/0"  # nothing listens on port 1
    worker_heartbeat(node="all@host", queues=["default", "executions", "optimization"])
    sweeper_ran()
    leaky = OperationalError('connection to "db.internal" failed: password hunter2-db rejected')

    with mock.patch.dict("cognitive.services.health._CHECKS", {"database": mock.Mock(side_effect=leaky)}):
        response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": False, "error": "OperationalError"}
    assert checks["broker"]["ok"] is False and set(checks["broker"]) == {"ok", "error"}
    assert checks["workers"]["ok"] and checks["sweeper"]["ok"]
    text = response.content.decode()
    for secret in ("hunter2", "db.internal", settings.SECRET_KEY, "127.0.0.1"):
        assert secret not in text


def test_the_sweeper_task_records_its_run():
    from workers.maintenance import sweep

    before = timezone.now()
    sweep()  # the task's body, as a worker runs it

    assert Heartbeat.objects.get(name="sweeper").seen_at >= before
