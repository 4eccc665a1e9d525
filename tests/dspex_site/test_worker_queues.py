"""Which queues a worker consumes, as Celery's own worker computes them from its command line."""

from __future__ import annotations

from fnmatch import fnmatch

import pytest
from celery import Celery

from dspex_site.celery import app as project_app


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
