"""Which queues a worker consumes, as Celery's own worker computes them from its command line."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from cognitive.models import FINAL_STATUSES, Execution, ExecutionStatus, Heartbeat, HeartbeatKind
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.run_requests import program_run_request, run_enqueue
from cognitive.services.signatures import signature_create
from dspex_site.celery import app as project_app

REPO = Path(__file__).resolve().parents[2]


def fresh_app() -> Celery:
    # The worker narrows its app's queue set in place (-Q); a fresh app keeps tests independent.
    app = Celery("dspex_site")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    return app


def consumed_queues(queues: list[str] | None) -> set[str]:
    app = fresh_app()
    worker = app.WorkController(queues=queues, pool_cls="solo", without_mingle=True, without_gossip=True)
    return set(worker.app.amqp.queues.consume_from)


def routed_queues() -> set[str]:
    project_app.loader.import_default_modules()
    routes = project_app.conf.task_routes
    ours = [name for name in project_app.tasks if name.startswith("workers.")]
    assert ours, "no tasks were discovered in workers/"
    queues = set()
    for name in ours:
        matches = [route["queue"] for pattern, route in routes.items() if fnmatch(name, pattern)]
        queues.add(matches[0] if matches else project_app.conf.task_default_queue)
    return queues


def test_a_worker_started_without_q_consumes_every_queue_tasks_are_routed_to():
    assert routed_queues() == {"executions", "optimization", "default"}

    assert consumed_queues(None) == routed_queues()


@pytest.mark.parametrize(
    "queues", [["executions", "default"], ["optimization"]], ids=["executions-pool", "optimization-pool"]
)
def test_dedicated_pools_still_consume_only_the_queues_they_name(queues):
    assert consumed_queues(queues) == set(queues)


def test_declared_queues_route_like_the_queues_celery_creates_on_demand():
    # A publisher and a -Q worker must agree on exchange and routing key, or messages go nowhere.
    app = fresh_app()
    for name in ("executions", "optimization", "default"):
        declared = app.amqp.queues[name]
        created = app.amqp.queues.new_missing(name)
        assert (declared.exchange.name, declared.exchange.type, declared.routing_key) == (
            created.exchange.name, created.exchange.type, created.routing_key,
        )
        assert declared.queue_arguments == {"x-max-priority": app.conf.task_queue_max_priority}


def _database_url_for_subprocesses() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)  # the worker process reads only committed rows
def test_a_real_worker_started_without_q_runs_a_queued_run_and_heartbeats_its_queues(user, local_lm, settings):
    settings.DSPEX_DEFAULT_LM_API_BASE = local_lm.url
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="qa", type="predict", signature=signature)
    program = program_activate(
        program=program_create(owner=user, name="p", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
    execution, created = run_enqueue(
        program_run_request(program=program, owner=user, input={"question": "What is 2 + 3?"})
    )
    assert created
    env = {
        **os.environ, "DATABASE_URL": _database_url_for_subprocesses(), "DSPEX_DEFAULT_LM_API_BASE": local_lm.url,
        "DSPEX_WORKER_HEARTBEAT_SECONDS": "1", "DEBUG": "1",
    }
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "dspex_site", "worker", "--pool=threads",
         "--concurrency=2", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while Execution.objects.get(pk=execution.pk).status not in FINAL_STATUSES:
            assert worker.poll() is None, worker.stderr.read()
            assert time.monotonic() < deadline, "the queued run was never picked up"
            time.sleep(0.3)
        beat = Heartbeat.objects.get(kind=HeartbeatKind.WORKER)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error
    assert execution.output["answer"] == "5"
    assert beat.queues == sorted(routed_queues())
    assert not Heartbeat.objects.filter(kind=HeartbeatKind.WORKER).exists()  # a clean stop withdraws it


def test_the_default_folder_broker_names_a_host_so_kombu_does_not_warn(caplog, settings):
    from kombu import Connection

    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("this run uses another broker (CELERY_BROKER_URL or REDIS_URL is set)")
    with caplog.at_level(logging.WARNING, logger="kombu"), Connection(settings.CELERY_BROKER_URL) as conn:
        conn.info()

    assert "No hostname was supplied" not in caplog.text
