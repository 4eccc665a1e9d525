"""/graphql/ over HTTP: REST's authentication, GraphQL's error format for every answer, GraphiQL offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from strawberry.printer import print_schema

from cognitive.api.graphql.schema import schema
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db

QUERY = {"query": "{ programs { edges { node { id name } } } }"}


def errors_of(response) -> list[dict]:
    body = response.json()
    assert set(body) >= {"errors"} and body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["message"], str) and error["message"]
    return body["errors"]


def test_token_header_authenticates_as_for_rest(client_for, user):
    ProgramFactory(owner=user, name="mine")
    response = client_for(user).post("/graphql/", QUERY, format="json")
    assert response.status_code == 200
    assert [edge["node"]["name"] for edge in response.json()["data"]["programs"]["edges"]] == ["mine"]


def test_a_bad_token_is_401_with_a_graphql_body():
    response = Client().post("/graphql/", QUERY, content_type="application/json", HTTP_AUTHORIZATION="Token nope")
    assert response.status_code == 401
    assert errors_of(response)[0] == {"message": "Invalid token.", "extensions": {"code": 401}}


def test_a_session_needs_csrf_on_post_as_for_rest(user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    refused = browser.post("/graphql/", QUERY, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in errors_of(refused)[0]["message"]

    page = browser.get("/graphql/", HTTP_ACCEPT="text/html")
    token = json.loads(re.search(r'id="dspex-csrf-token"[^>]*>(.*?)</script>', page.content.decode()).group(1))
    allowed = browser.post("/graphql/", QUERY, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 200 and "errors" not in allowed.json()


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    ("{not json", "application/json", 400, "Unable to parse request body as JSON"),
    ("{}", "application/json", 400, "No GraphQL query found in the request"),
    ("query", "text/plain", 400, "Unsupported content type"),
])
def test_http_failures_still_answer_in_graphql_format(client_for, user, body, content_type, status, message):
    response = client_for(user).generic("POST", "/graphql/", body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert errors_of(response) == [{"message": message, "extensions": {"code": status}}]


def test_a_body_over_the_upload_limit_is_413_with_a_graphql_body(client_for, user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = json.dumps({"query": "{ programs { edges { cursor } } }", "variables": {"pad": "x" * 2000}})
    response = client_for(user).generic("POST", "/graphql/", big, content_type="application/json")
    assert response.status_code == 413
    assert errors_of(response)[0]["extensions"] == {"code": 413}


def test_a_mutation_over_get_or_another_method_is_refused_in_graphql_format(client_for, user):
    document = 'mutation { rollbackProgram(programId: "x") { errors { code } } }'
    mutation = client_for(user).get("/graphql/", {"query": document})
    assert mutation.status_code == 400
    assert errors_of(mutation) == [{"message": "mutations are not allowed when using GET", "extensions": {"code": 400}}]
    put = client_for(user).put("/graphql/", QUERY, format="json")
    assert put.status_code == 405 and errors_of(put)[0]["extensions"]["code"] == 405


def test_graphiql_is_for_signed_in_users_only(user):
    anonymous = Client().get("/graphql/", HTTP_ACCEPT="text/html")
    assert anonymous.status_code == 401 and errors_of(anonymous)[0]["extensions"]["code"] == 401

    browser = Client()
    browser.force_login(user)
    page = browser.get("/graphql/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"GraphiQL" in page.content


def test_graphiql_references_nothing_outside_this_site(user):
    browser = Client()
    browser.force_login(user)
    html = browser.get("/graphql/", HTTP_ACCEPT="text/html").content.decode()

    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "an external URL"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 4
    for asset in assets:
        assert asset.startswith(f"/{settings.STATIC_URL.lstrip('/')}graphiql/"), asset
        found = finders.find(asset.split(settings.STATIC_URL, 1)[1])
        assert found, asset
        text = Path(found).read_text(encoding="utf-8", errors="replace")
        assert "sourceMappingURL" not in text and "@import" not in text
        assert not re.search(r"url\((?!data:)", text), f"{asset} loads something"


def test_schema_graphql_is_up_to_date():
    exported = (Path(settings.BASE_DIR) / "schema.graphql").read_text(encoding="utf-8")
    assert exported == print_schema(schema), "schema.graphql is out of date: run `make graphql-schema`"
