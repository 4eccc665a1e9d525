"""`manage.py serve` on PostgreSQL and Redis: the same stack, the same clean stop."""

from __future__ import annotations

from tests.integration.harness import free_port, worker_env
from tests.serve_harness import Serve, exercise


def test_serve_runs_on_postgresql_and_redis_and_ctrl_c_leaves_nothing_behind(redis_server, local_lm, tmp_path):
    env = worker_env(broker_url=redis_server.url, lm_url=local_lm.url, extra={
        "DEBUG": "1", "DSPEX_VAR_DIR": str(tmp_path), "DSPEX_WORKER_HEARTBEAT_SECONDS": "1",
    })
    env.pop("DSPEX_DEFAULT_LM_API_BASE")  # serve starts its own local LM on the port it is given
    env.pop("CELERY_BROKER_URL")  # the broker follows REDIS_URL
    lm_port = free_port()
    serve = Serve(["--port", str(free_port()), "--lm-port", str(lm_port), "--noreload"], env)
    try:
        seen = exercise(serve)
    finally:
        serve.kill()

    assert seen["healthz"][0] == 200
    assert seen["readyz"]["status_code"] == 200, seen["readyz"]
    checks = seen["readyz"]["checks"]
    assert (checks["database"]["vendor"], checks["cache"]["backend"], checks["broker"]["transport"]) == (
        "postgresql", "redis", "redis",
    )
    assert seen["api"] == 200
    assert seen["exit_code"] == 0, serve.output()
    assert seen["left_behind"] == set(), serve.output()
