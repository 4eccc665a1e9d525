"""`manage.py serve` (`make serve`): the development stack in one command, gone after Ctrl-C."""

from __future__ import annotations

import os
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from cognitive.devstack import ensure_admin
from tests.integration.harness import free_port
from tests.serve_harness import Serve, exercise


def embedded_default_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    return {
        **env, "DEBUG": "1", "DSPEX_VAR_DIR": str(tmp_path), "DSPEX_WORKER_HEARTBEAT_SECONDS": "1",
        "DSPEX_SWEEP_EVERY_SECONDS": "1", "PYTHONUNBUFFERED": "1",
    }


def test_serve_runs_the_stack_on_the_embedded_default_and_ctrl_c_leaves_nothing_behind(tmp_path):
    web_port, lm_port = free_port(), free_port()
    serve = Serve(["--port", str(web_port), "--lm-port", str(lm_port)], embedded_default_env(tmp_path))
    try:
        seen = exercise(serve)
    finally:
        serve.kill()
    output = serve.output()

    assert seen["web"] == f"http://127.0.0.1:{web_port}/"
    assert serve.value("LM") == f"http://127.0.0.1:{lm_port}/v1"
    assert seen["healthz"] == (200, {"status": "ok"})
    assert seen["readyz"]["status_code"] == 200, seen["readyz"]
    checks = seen["readyz"]["checks"]
    assert (checks["database"]["vendor"], checks["broker"]["transport"]) == ("sqlite", "filesystem")
    assert checks["workers"]["live_workers"] == 2
    assert seen["api"] == 200  # the printed token authenticates
    assert "  login      admin / " in output and "shown only this once" in output
    for name in ("web", "executions", "optimization", "beat", "local-lm"):
        assert f"{name} | " in output, f"no log line from {name}"
    # The web server's reloader, two workers (one with a pool process), beat and the local LM.
    assert len(seen["processes"]) >= 6, seen["processes"]
    assert seen["exit_code"] == 0, output
    assert seen["left_behind"] == set(), output
    assert output.rstrip().endswith("Stopped.")


def test_serve_refuses_a_taken_port_naming_the_option(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = Serve(["--port", str(port), "--lm-port", str(free_port())], embedded_default_env(tmp_path))
        try:
            code = serve.process.wait(120)
        finally:
            serve.kill()

    assert code != 0
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port" in serve.output()


@pytest.mark.django_db
def test_the_admin_login_is_created_once_and_keeps_its_token():
    first = ensure_admin("admin")
    again = ensure_admin("admin")

    assert first.password and again.password is None
    assert first.token == again.token
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(first.password)


def test_serve_refuses_a_host_the_settings_would_reject(settings):
    settings.ALLOWED_HOSTS = ["dspex.example"]

    expected = re.escape("ALLOWED_HOSTS does not include 127.0.0.1: set ALLOWED_HOSTS, or DEBUG=1")
    with pytest.raises(CommandError, match=expected):
        call_command("serve", "--port", str(free_port()), "--no-local-lm")
