"""The test run itself: a skipped test says why it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_skipped_test_reports_its_reason():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}  # so it skips
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/integration/test_serve.py"],
        cwd=REPO, env={**env, "DEBUG": "1"}, capture_output=True, text=True, timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SKIPPED [1] tests/integration/test_serve.py" in result.stdout
    assert "integration tests run real workers: they need PostgreSQL (DATABASE_URL) and redis-server" in result.stdout
