"""Redis down while runs are submitted (issue 11): accepted, kept, and each completed exactly once.

Before: `run/` and `run-batch/` answered 500, because the throttle's cache (Redis) raised. Now the
throttle fails open with a warning, the rows are written (202), publishing fails quietly, and the
sweeper publishes them once Redis is back.
"""

from __future__ import annotations

import pytest

from cognitive.models import Execution
from tests.factories import UserFactory
from tests.integration.harness import RedisServer
from tests.integration.test_durability import assert_each_completed_once, make_program, wait_all_final

pytestmark = pytest.mark.integration


@pytest.fixture
def cache_on_the_broker(settings, broker: RedisServer) -> RedisServer:
    """This process's cache (the throttle's) on the test's own Redis, so stopping it takes both down."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": broker.url.replace("/0", "/1"),
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
    return broker


def test_runs_submitted_while_redis_is_down_complete_exactly_once(
    processes, cache_on_the_broker, client_for, local_lm
):
    owner = UserFactory()
    program = make_program(owner)
    client = client_for(owner)
    processes.worker(concurrency=4)
    processes.beat()

    cache_on_the_broker.stop()
    single = client.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "What is 1 + 1?"}}, format="json")
    inputs = [{"question": f"What is {i} + {i}?"} for i in range(5)]
    batch = client.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": inputs}, format="json")
    assert single.status_code == 202, single.content
    assert batch.status_code == 202, batch.content
    ids = [single.json()["execution"], *Execution.objects.filter(batch_id=batch.json()["batch"]["id"])
           .values_list("pk", flat=True)]
    assert len(ids) == 6 and Execution.objects.filter(pk__in=ids, status="pending").count() == 6

    cache_on_the_broker.start()  # same port: the workers, beat and the sweeper reconnect
    wait_all_final(ids, timeout=120, procs=processes)
    assert_each_completed_once(ids)
    assert local_lm.stats()["chat_requests"] == 6
