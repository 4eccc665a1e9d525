"""Who sees what: every route for anonymous, owner, another user and staff."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from cognitive.models import Execution, ExecutionStatus, LanguageModel, ProgramStatus
from tests.factories import (
    ExecutionFactory,
    LanguageModelFactory,
    ModuleFactory,
    OptimizerFactory,
    ProgramFactory,
    ProgramVersionFactory,
    SignatureFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

# Route → how to make one object owned by a user.
OWNED: dict[str, Callable[[Any], Any]] = {
    "signatures": lambda owner: SignatureFactory(owner=owner),
    "modules": lambda owner: ModuleFactory(owner=owner),
    "programs": lambda owner: ProgramFactory(owner=owner),
    "program-versions": lambda owner: ProgramVersionFactory(program=ProgramFactory(owner=owner)),
    "optimizers": lambda owner: OptimizerFactory(owner=owner),
    "executions": lambda owner: ExecutionFactory(owner=owner),
}
WRITABLE = ["signatures", "modules", "programs", "optimizers"]
READ_ONLY = ["program-versions", "executions"]
ACTIONS = [
    ("modules", "initialize"),
    ("modules", "reset"),
    ("programs", "activate"),
    ("programs", "archive"),
    ("executions", "cancel"),
]


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def assert_error_body(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    return body


# --------------------------------------------------------------------------- anonymous


ANONYMOUS_REQUESTS = [
    *[("get", f"/api/{route}/") for route in [*OWNED, "lms"]],
    *[("post", f"/api/{route}/") for route in [*WRITABLE, "lms"]],
    *[(method, f"/api/{route}/{{id}}/") for route in OWNED for method in ("get", "patch", "delete")],
    *[("post", f"/api/{route}/{{id}}/{action}/") for route, action in ACTIONS],
    ("get", "/api/lms/{lm}/"),
    ("patch", "/api/lms/{lm}/"),
    ("delete", "/api/lms/{lm}/"),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS_REQUESTS)
def test_anonymous_is_refused_everywhere(client_for, user, method, url):
    route = url.split("/")[2]
    obj_id = OWNED[route](user).pk if "{id}" in url else None
    lm = LanguageModelFactory() if "{lm}" in url else None
    url = url.format(id=obj_id, lm=lm.pk if lm else None)

    response = getattr(client_for(), method)(url, {}, format="json")

    body = assert_error_body(response, 401)
    assert "credentials" in body["message"]
    assert response["WWW-Authenticate"] == "Token"


# --------------------------------------------------------------------------- owner, other user, staff


@pytest.mark.parametrize("route", list(OWNED))
def test_list_shows_own_rows_only_and_staff_sees_all(client_for, user, other_user, staff, route):
    mine, theirs = OWNED[route](user), OWNED[route](other_user)

    assert ids(client_for(user).get(f"/api/{route}/")) == {str(mine.pk)}
    assert ids(client_for(other_user).get(f"/api/{route}/")) == {str(theirs.pk)}
    assert ids(client_for(staff).get(f"/api/{route}/")) >= {str(mine.pk), str(theirs.pk)}


@pytest.mark.parametrize("route", list(OWNED))
def test_detail_is_the_owners_and_staffs_and_404_for_another_user(client_for, user, other_user, staff, route):
    mine = OWNED[route](user)

    assert client_for(user).get(f"/api/{route}/{mine.pk}/").json()["id"] == str(mine.pk)
    assert client_for(staff).get(f"/api/{route}/{mine.pk}/").json()["id"] == str(mine.pk)
    assert_error_body(client_for(other_user).get(f"/api/{route}/{mine.pk}/"), 404)


@pytest.mark.parametrize("route", WRITABLE)
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_another_user_cannot_change_or_delete(client_for, user, other_user, route, method):
    mine = OWNED[route](user)

    response = getattr(client_for(other_user), method)(f"/api/{route}/{mine.pk}/", {"name": "taken"}, format="json")

    assert_error_body(response, 404)
    assert type(mine).objects.get(pk=mine.pk).name == mine.name


@pytest.mark.parametrize("route", WRITABLE)
@pytest.mark.parametrize("who", ["owner", "staff"])
def test_owner_and_staff_rename_and_delete(client_for, user, staff, route, who):
    mine = OWNED[route](user)
    client = client_for(user if who == "owner" else staff)

    renamed = client.patch(f"/api/{route}/{mine.pk}/", {"name": "renamed"}, format="json")
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "renamed"
    assert renamed.json()["owner"] == user.username  # staff editing does not take ownership

    assert client.delete(f"/api/{route}/{mine.pk}/").status_code == 204
    assert not type(mine).objects.filter(pk=mine.pk).exists()


@pytest.mark.parametrize("route", WRITABLE)
def test_created_rows_belong_to_the_caller(client_for, user, route):
    signature = SignatureFactory(owner=user)
    payloads = {
        "signatures": {"name": "qa", "spec": "question -> answer"},
        "modules": {"name": "qa", "type": "predict", "signature": str(signature.pk)},
        "programs": {"name": "qa", "pipeline": {}},
        "optimizers": {"name": "qa", "type": "labeled_few_shot", "config": {"k": 2}},
    }

    response = client_for(user).post(f"/api/{route}/", payloads[route], format="json")

    assert response.status_code == 201, response.content
    assert response.json()["owner"] == user.username


@pytest.mark.parametrize("route", READ_ONLY)
@pytest.mark.parametrize("who", ["user", "staff"])
def test_read_only_routes_refuse_writes(client_for, user, staff, route, who):
    mine = OWNED[route](user)
    client = client_for(user if who == "user" else staff)

    assert_error_body(client.post(f"/api/{route}/", {}, format="json"), 405)
    assert_error_body(client.patch(f"/api/{route}/{mine.pk}/", {}, format="json"), 405)
    assert_error_body(client.delete(f"/api/{route}/{mine.pk}/"), 405)
    assert type(mine).objects.filter(pk=mine.pk).exists()


# --------------------------------------------------------------------------- transition endpoints


@pytest.mark.parametrize(("route", "action"), ACTIONS)
def test_transition_endpoints_owner_staff_and_other(client_for, user, other_user, staff, route, action):
    mine = OWNED[route](user)
    url = f"/api/{route}/{mine.pk}/{action}/"

    assert_error_body(client_for(other_user).post(url), 404)
    # Owner and staff reach the action: it either runs (200) or is refused by the state machine (409).
    for client in (client_for(user), client_for(staff)):
        response = client.post(url)
        assert response.status_code in (200, 409), response.content


def test_module_initialize_and_reset_by_owner(client_for, user):
    module = ModuleFactory(owner=user)
    client = client_for(user)

    assert client.post(f"/api/modules/{module.pk}/initialize/").json()["state"] == "ready"
    assert client.post(f"/api/modules/{module.pk}/reset/").json()["state"] == "uninitialized"


def test_program_activate_and_archive_by_owner(client_for, user):
    program = ProgramFactory(owner=user)
    client = client_for(user)

    assert client.post(f"/api/programs/{program.pk}/activate/").json()["status"] == "active"
    archived = client.post(f"/api/programs/{program.pk}/archive/")
    assert archived.status_code == 200, archived.content
    assert archived.json()["status"] == "archived"


# --------------------------------------------------------------------------- archived programs


def test_archived_programs_are_invisible_to_non_staff_reads(client_for, user, staff):
    live = ProgramFactory(owner=user)
    archived = ProgramFactory(owner=user, status=ProgramStatus.ARCHIVED)
    version = ProgramVersionFactory(program=archived)
    owner = client_for(user)

    assert ids(owner.get("/api/programs/")) == {str(live.pk)}
    assert_error_body(owner.get(f"/api/programs/{archived.pk}/"), 404)
    assert ids(owner.get("/api/programs/?status=archived")) == set()
    assert ids(owner.get("/api/program-versions/")) == set()
    assert_error_body(owner.get(f"/api/program-versions/{version.pk}/"), 404)

    admin = client_for(staff)
    assert ids(admin.get("/api/programs/")) == {str(live.pk), str(archived.pk)}
    assert admin.get(f"/api/programs/{archived.pk}/").json()["status"] == "archived"
    assert ids(admin.get("/api/program-versions/")) == {str(version.pk)}


# --------------------------------------------------------------------------- language models


LM_PAYLOAD = {
    "name": "gpt",
    "model": "openai/gpt-4o-mini",
    "api_base": "https://llm.example.com/v1",
    "api_key_env": "DSPEX_LM_KEY_TEST",
    "params": {"temperature": 0.2, "max_tokens": 256},
    "rpm": 60,
    "tpm": 10000,
}


def test_every_signed_in_user_reads_lms(client_for, user, staff):
    lm = LanguageModelFactory(name="shared")

    for who in (user, staff):
        client = client_for(who)
        assert [row["name"] for row in client.get("/api/lms/").json()["results"]] == ["shared"]
        assert client.get(f"/api/lms/{lm.pk}/").json()["model"] == lm.model


def test_users_cannot_write_lms(client_for, user):
    lm = LanguageModelFactory(name="shared")
    client = client_for(user)

    assert_error_body(client.post("/api/lms/", LM_PAYLOAD, format="json"), 403)
    assert_error_body(client.patch(f"/api/lms/{lm.pk}/", {"api_base": "https://evil.example"}, format="json"), 403)
    assert_error_body(client.delete(f"/api/lms/{lm.pk}/"), 403)
    assert LanguageModel.objects.get(pk=lm.pk).api_base == lm.api_base
    assert LanguageModel.objects.count() == 1


def test_staff_create_change_and_delete_lms(client_for, staff):
    client = client_for(staff)

    created = client.post("/api/lms/", LM_PAYLOAD, format="json")
    assert created.status_code == 201, created.content
    lm_id = created.json()["id"]
    patched = client.patch(f"/api/lms/{lm_id}/", {"rpm": 5}, format="json")
    assert patched.json()["rpm"] == 5
    assert client.delete(f"/api/lms/{lm_id}/").status_code == 204
    assert not LanguageModel.objects.exists()


def test_the_api_key_value_appears_in_no_response(client_for, user, staff, monkeypatch):
    secret = "sk-live-DO-NOT-LEAK-1234567890"
    monkeypatch.setenv("DSPEX_LM_KEY_TEST", secret)
    admin, reader = client_for(staff), client_for(user)

    created = admin.post("/api/lms/", LM_PAYLOAD, format="json")
    lm_id = created.json()["id"]
    responses = [
        created,
        admin.patch(f"/api/lms/{lm_id}/", {"rpm": 30}, format="json"),
        admin.get("/api/lms/"),
        reader.get("/api/lms/"),
        reader.get(f"/api/lms/{lm_id}/"),
        reader.get("/api/schema/"),
        reader.post("/api/modules/", {"name": "m", "type": "predict", "lm": "gpt"}, format="json"),
    ]

    for response in responses:
        assert secret not in response.content.decode()
    assert created.json()["api_key_env"] == "DSPEX_LM_KEY_TEST"
    assert created.json()["key_configured"] is True
    assert secret not in json.dumps(list(LanguageModel.objects.values()), default=str)


def test_key_configured_is_false_when_the_variable_is_unset(client_for, user, monkeypatch):
    monkeypatch.delenv("DSPEX_LM_KEY_TEST", raising=False)
    lm = LanguageModelFactory(api_key_env="DSPEX_LM_KEY_TEST")

    assert client_for(user).get(f"/api/lms/{lm.pk}/").json()["key_configured"] is False


# --------------------------------------------------------------------------- executions


@pytest.fixture
def runs(user, other_user):
    """Executions of two programs and a module, at known times."""
    program_a, program_b = ProgramFactory(owner=user), ProgramFactory(owner=user)
    module = ModuleFactory(owner=user)
    now = timezone.now()
    made = {
        "old_done": ExecutionFactory(owner=user, program=program_a, status=ExecutionStatus.COMPLETED),
        "a_failed": ExecutionFactory(owner=user, program=program_a, status=ExecutionStatus.FAILED),
        "b_pending": ExecutionFactory(owner=user, program=program_b),
        "module_run": ExecutionFactory(owner=user, program=None, module=module, status=ExecutionStatus.COMPLETED),
        "theirs": ExecutionFactory(owner=other_user),
    }
    ages = {"old_done": 10, "a_failed": 3, "b_pending": 2, "module_run": 1, "theirs": 0}
    for key, days in ages.items():
        Execution.objects.filter(pk=made[key].pk).update(created_at=now - timedelta(days=days))
    made.update(program_a=program_a, program_b=program_b, module=module, now=now)
    return made


def _run_ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_execution_filters(client_for, user, runs):
    client = client_for(user)

    def only(*keys: str) -> set[str]:
        return {str(runs[key].pk) for key in keys}

    assert set(_run_ids(client.get("/api/executions/", {"program": runs["program_a"].pk}))) == only(
        "old_done", "a_failed"
    )
    assert set(_run_ids(client.get("/api/executions/", {"module": runs["module"].pk}))) == only("module_run")
    assert set(_run_ids(client.get("/api/executions/", {"status": "completed"}))) == only("old_done", "module_run")
    created_after = (runs["now"] - timedelta(days=5)).isoformat()
    assert set(_run_ids(client.get("/api/executions/", {"created_after": created_after}))) == only(
        "a_failed", "b_pending", "module_run"
    )
    combined = client.get("/api/executions/", {"program": runs["program_a"].pk, "status": "failed"})
    assert set(_run_ids(combined)) == only("a_failed")


def test_execution_ordering_and_limit(client_for, user, runs):
    client = client_for(user)
    newest_first = ["module_run", "b_pending", "a_failed", "old_done"]

    assert _run_ids(client.get("/api/executions/", {"ordering": "-created_at"})) == [
        str(runs[key].pk) for key in newest_first
    ]
    assert _run_ids(client.get("/api/executions/", {"ordering": "created_at"})) == [
        str(runs[key].pk) for key in reversed(newest_first)
    ]
    page = client.get("/api/executions/", {"ordering": "-created_at", "limit": 2}).json()
    assert [row["id"] for row in page["results"]] == [str(runs[key].pk) for key in newest_first[:2]]
    assert page["count"] == 4
    assert page["next"] is not None


def test_execution_filters_never_reach_another_users_rows(client_for, user, other_user, runs):
    their_program = runs["theirs"].program

    assert _run_ids(client_for(user).get("/api/executions/", {"program": their_program.pk})) == []
    assert _run_ids(client_for(other_user).get("/api/executions/", {"program": runs["program_a"].pk})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"created_after": "yesterday-ish"}, "created_after"),
        ({"program": "not-a-uuid"}, "program"),
    ],
)
def test_bad_execution_filters_are_400(client_for, user, params, field):
    body = assert_error_body(client_for(user).get("/api/executions/", params), 400)

    assert field in body["extra"]["fields"]


def test_execution_detail_includes_its_children(client_for, user, other_user, staff):
    parent = ExecutionFactory(owner=user, status=ExecutionStatus.COMPLETED)
    first = ExecutionFactory(owner=user, program=parent.program, parent=parent, step_id="retrieve")
    second = ExecutionFactory(owner=user, program=parent.program, parent=parent, step_id="answer")
    Execution.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=5))

    for who in (user, staff):
        detail = client_for(who).get(f"/api/executions/{parent.pk}/").json()
        assert [(c["id"], c["step_id"]) for c in detail["children"]] == [
            (str(first.pk), "retrieve"),
            (str(second.pk), "answer"),
        ]
        assert detail["status"] == "completed"
    assert_error_body(client_for(other_user).get(f"/api/executions/{parent.pk}/"), 404)
    top_level = client_for(user).get("/api/executions/", {"root": "true"})
    assert _run_ids(top_level) == [str(parent.pk)]


# --------------------------------------------------------------------------- auth, schema, docs


def test_token_endpoint_issues_a_working_token(client_for):
    UserFactory(username="alice")  # password "pw"
    anonymous = client_for()

    response = anonymous.post("/api/auth/token/", {"username": "alice", "password": "pw"}, format="json")

    assert response.status_code == 200, response.content
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert anonymous.get("/api/signatures/").status_code == 200


def test_token_endpoint_refuses_a_wrong_password(client_for):
    UserFactory(username="alice")

    response = client_for().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")

    body = assert_error_body(response, 400)
    assert "credentials" in body["message"]
    assert "token" not in response.json()


def test_a_bad_token_is_401(client_for):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    assert_error_body(client.get("/api/signatures/"), 401)


def test_session_authentication_reads_and_requires_csrf_for_writes(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    SignatureFactory(owner=user, name="mine")

    assert [row["name"] for row in client.get("/api/signatures/").json()["results"]] == ["mine"]
    refused = client.post(
        "/api/signatures/", {"name": "x", "spec": "a -> b"}, content_type="application/json"
    )
    body = assert_error_body(refused, 403)
    assert "CSRF" in body["message"]


def test_openapi_schema_describes_every_resource(client_for, user):
    response = client_for(user).get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for route in [*OWNED, "lms"]:
        assert f"/api/{route}/" in paths
        assert f"/api/{route}/{{id}}/" in paths
    for route, action in ACTIONS:
        assert f"/api/{route}/{{id}}/{action}/" in paths
    assert "/api/auth/token/" in paths


def test_swagger_ui_points_at_the_schema(client_for, user):
    response = client_for(user).get("/api/docs/")

    assert response.status_code == 200
    assert "swagger" in response.content.decode().lower()
    assert "/api/schema/" in response.content.decode()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_authentication(client_for, path):
    assert client_for().get(path).status_code == 401
