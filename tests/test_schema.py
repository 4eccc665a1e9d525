"""The checks `make check` runs, as tests: a valid OpenAPI schema and migrations that match the models."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import call_command


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"

    call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))

    schema = yaml.safe_load(out.read_text())
    assert schema["info"]["title"] == "DSPex API"
    assert "/api/executions/{id}/" in schema["paths"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = StringIO()

    try:
        call_command("makemigrations", check=True, dry_run=True, stdout=out, stderr=out)
    except SystemExit as exit_:  # raised when a migration is missing
        pytest.fail(f"models changed without a migration:\n{out.getvalue()}\n(exit {exit_.code})")

    assert "No changes detected" in out.getvalue()
