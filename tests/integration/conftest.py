from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from dspex_site.celery import app as celery_app
from tests.integration.harness import Processes, RedisServer, worker_env


@pytest.fixture(autouse=True)
def _needs_real_services(transactional_db: None) -> None:
    if connection.vendor != "postgresql" or not shutil.which("redis-server"):
        pytest.skip("integration tests run real workers: they need PostgreSQL (DATABASE_URL) and redis-server")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _drop_connection_pools() -> None:
    """Forget pooled broker connections so the next publish connects to the current broker_url."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker(redis_server: RedisServer) -> Iterator[RedisServer]:
    """Point this process's Celery app (the API's publisher) at the throwaway Redis."""
    old = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf.broker_url = redis_server.url
    celery_app.conf.broker_transport_options = {
        "visibility_timeout": 3600, "queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":",
    }
    _drop_connection_pools()
    yield redis_server
    _drop_connection_pools()
    celery_app.conf.broker_url, celery_app.conf.broker_transport_options = old


@pytest.fixture
def processes(broker: RedisServer, local_lm, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Processes]:
    procs = Processes(worker_env(broker_url=broker.url, lm_url=local_lm.url), tmp_path)
    yield procs
    procs.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(procs.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
