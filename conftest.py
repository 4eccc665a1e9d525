import os
import shutil
import tempfile
from pathlib import Path

# Tests run with a throwaway key; production refuses to start without SECRET_KEY.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

pytest_plugins = ["tests.fixtures_local_lm"]

# Metric values of this test run (and of the worker processes integration tests start, which
# inherit the environment) go to a fresh folder rather than the development one in var/metrics.
# pytest-django has loaded the settings already; no metric value has been written yet.
_METRICS_DIR = tempfile.mkdtemp(prefix="dspex-test-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR


def pytest_configure(config):
    from django.conf import settings

    settings.PROMETHEUS_MULTIPROC_DIR = Path(_METRICS_DIR)


def pytest_unconfigure(config):
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
