"""Job-aware logs: lines logged inside a job carry its id, program and attempt; LOG_FORMAT=json; Sentry opt-in."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from cognitive.services.execution_jobs import execution_process
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from cognitive.telemetry.logs import JobContextFilter, JobJsonFormatter, job_context
from tests.factories import LanguageModelFactory

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def json_lines():
    """The console handler as LOG_FORMAT=json configures it, on a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(JobContextFilter())
    options = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(JobJsonFormatter(options["fmt"], rename_fields=options["rename_fields"]))
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_every_line_inside_a_job_carries_its_execution_program_and_attempt(api, user, local_lm, json_lines):
    lm = LanguageModelFactory(name="log-lm", api_base=local_lm.url)
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="qa", type="predict", signature=signature, lm=lm)
    program = program_activate(
        program=program_create(owner=user, name="logged", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )
    execution_id = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "q"}}, format="json").json()[
        "execution"
    ]
    assert execution_process(execution_id=execution_id) == "completed"
    logging.getLogger("elsewhere").warning("outside any job")

    lines = json_lines()
    (outcome,) = [line for line in lines if line["logger"] == "dspex.jobs"]
    assert outcome["execution_id"] == execution_id
    assert outcome["program"] == str(program.pk)
    assert outcome["attempt"] == "1"
    assert outcome["level"] == "INFO" and "completed" in outcome["message"]
    (outside,) = [line for line in lines if line["logger"] == "elsewhere"]
    assert "execution_id" not in outside and outside["message"] == "outside any job"


def test_the_text_format_shows_the_job_too():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with job_context(execution_id="e1", program="p1", attempt=2):
        JobContextFilter().filter(record)
    formatter = logging.Formatter(settings.LOGGING["formatters"]["text"]["format"])
    assert formatter.format(record).endswith("x [execution_id=e1 program=p1 attempt=2]: hello")


def _settings_process(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "dspex_site.settings", "HOME": str(tmp_path),
        "DEBUG": "1", "DSPEX_VAR_DIR": str(tmp_path), **env,
    }
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


def test_log_format_must_be_text_or_json(tmp_path):
    result = _settings_process(tmp_path, "from django.conf import settings; settings.LOGGING", LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be 'text' or 'json'" in result.stderr


def test_sentry_starts_with_django_and_celery_integrations_only_when_a_dsn_is_set(tmp_path):
    code = (
        "import django; django.setup(); import sentry_sdk; c = sentry_sdk.get_client(); "
        "print(c.is_active(), sorted(c.integrations) if c.is_active() else [])"
    )
    on = _settings_process(tmp_path, code, SENTRY_DSN="https://public@sentry.example.invalid/1")
    assert on.returncode == 0, on.stderr
    active, integrations = on.stdout.strip().split(" ", 1)
    assert active == "True" and "'celery'" in integrations and "'django'" in integrations
    off = _settings_process(tmp_path, code)
    assert off.returncode == 0, off.stderr
    assert off.stdout.strip().startswith("False")
