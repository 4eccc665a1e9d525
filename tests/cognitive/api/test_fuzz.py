"""Schema-driven fuzzing (issue 11): every operation of /api/schema/, valid and invalid inputs, no 5xx.

Schemathesis generates requests from the OpenAPI schema (drf-spectacular's, generated in-process:
the same document `/api/schema/` serves) and sends them to the Django WSGI app, signed in with a
token, inside the test's database transaction. The only check is "not a server error": a 4xx for
bad input is the right answer, a 5xx is a bug.

Bounded to about two minutes on a 2-core machine: DSPEX_FUZZ_EXAMPLES random examples per
operation (default 8), no shrinking, no deadline (the first request of an operation pays for
imports).

Excluded, and why:
- Operations that call an LM in the request: `POST /api/modules/{id}/execute/`,
  `POST /api/programs/{id}/run/` and `POST /api/corpora/{id}/search/` only reach an LM with ids of
  existing rows, which random UUIDs never are, so they are fuzzed for their 4xx paths like any
  other; `POST /api/corpora/` embeds its documents with the default LM, and there is no LM server
  in this test, so each example would wait on a refused connection: it is excluded here (corpora
  have their own tests against the local LM).
- `/api/auth/token/`: its throttle would answer 429 after ten attempts, which is correct and
  says nothing about 5xx; sign-in has its own tests.
- `/api/schema/` and `/api/docs/`: no input to fuzz.
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token

from dspex_site.wsgi import application
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

EXAMPLES = int(os.environ.get("DSPEX_FUZZ_EXAMPLES", "8"))
PHASES = os.environ.get("DSPEX_FUZZ_PHASES", "fuzzing").split(",")


def _schema() -> schemathesis.schemas.BaseSchema:
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = application
    # Random generation only by default: schemathesis' coverage phase enumerates every boundary case
    # of every parameter whatever max_examples says, which took six minutes here. A longer run:
    # DSPEX_FUZZ_PHASES=coverage,fuzzing.
    loaded.config.phases.update(phases=PHASES)
    return loaded.exclude(path="/api/auth/token/").exclude(path="/api/schema/").exclude(
        method="POST", path="/api/corpora/"
    )


schema = _schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Called as a WSGI app, Django closes the database connection after each request, which would
    close the test's transaction too; Django's own test client switches this off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token() -> str:
    key, _ = Token.objects.get_or_create(user=UserFactory(username="fuzzer"))
    return key.key


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_operation_answers_with_a_server_error(case, token):
    response = case.call(headers={"Authorization": f"Token {token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}\n"
        f"reproduce: {case.as_curl_command()}"
    )
