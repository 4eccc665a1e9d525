"""Entry points outside make: a missing setting ends in one line naming it, and the local LM needs none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECRET_KEY_LINE = (
    "DSPex is not configured: SECRET_KEY must be set unless DEBUG=1 (a development key is used only then) "
    "(see the Configuration table in README.md)"
)


def bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a new operator's shell has: no DEBUG, no SECRET_KEY, nothing DSPex-specific."""
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DSPEX_VAR_DIR": str(tmp_path), **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_run_local_lm_serves_without_a_secret_key_or_debug(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_local_lm", "--port", "0"],
        cwd=REPO, env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("local_lm serving OpenAI-compatible API at http://127.0.0.1:"), process.stderr.read()
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(url.removesuffix("/v1") + "/health", timeout=10) as response:
            assert json.load(response) == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr


def test_run_local_lm_reports_a_taken_port_in_one_line(tmp_path):
    first = subprocess.Popen(
        [sys.executable, "manage.py", "run_local_lm", "--port", "0"],
        cwd=REPO, env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = first.stdout.readline().strip().rsplit(":", 1)[1].removesuffix("/v1")
        result = run([sys.executable, "manage.py", "run_local_lm", "--port", port], bare_env(tmp_path))
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"manage.py run_local_lm: error: cannot listen on 127.0.0.1:{port}: "
                                                 "Address already in use"]


@pytest.mark.parametrize(
    "args",
    [
        [sys.executable, "manage.py", "migrate"],
        [sys.executable, "manage.py", "demo"],
        [str(BIN / "celery"), "-A", "dspex_site", "worker"],
        [str(BIN / "celery"), "-A", "dspex_site", "beat"],
    ],
    ids=["manage.py-migrate", "manage.py-demo", "celery-worker", "celery-beat"],
)
def test_a_missing_secret_key_ends_in_one_line_saying_what_to_set(tmp_path, args):
    result = run(args, bare_env(tmp_path))

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [SECRET_KEY_LINE]


def test_gunicorn_stops_with_the_same_line_instead_of_a_traceback(tmp_path):
    result = run([str(BIN / "gunicorn"), "dspex_site.wsgi:application", "--bind", "127.0.0.1:0"], bare_env(tmp_path))

    assert result.returncode == 4  # gunicorn's "App failed to load": it stops rather than respawning workers
    assert SECRET_KEY_LINE in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_a_bad_value_ends_in_one_line_naming_the_variable(tmp_path):
    result = run([sys.executable, "manage.py", "check"], bare_env(tmp_path, DEBUG="1", DB_CONN_MAX_AGE="forever"))

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "DSPex is not configured: DB_CONN_MAX_AGE must be an integer, got 'forever' "
        "(see the Configuration table in README.md)"
    ]
