"""No 500s and one error format under /api/ (issue 11).

Before: a NUL inside any JSON value was a 500 from PostgreSQL (SQLite stored it silently); JSON
nested 1,000 deep was a RecursionError 500; a body over the upload limit an HTML 400; an unknown
route an HTML 404; an unexpected error an HTML 500; with Redis down, `run/` a 500 from the throttle.
"""

from __future__ import annotations

import json
import logging
import uuid
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cognitive.errors import InvalidInput
from cognitive.models import Dataset, Example, Execution, ExecutionStatus, Program
from cognitive.services.datasets import dataset_create
from cognitive.services.programs import program_create
from tests.factories import ExecutionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

NUL = "a\u0000b"




def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def assert_envelope(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"message", "extra"} and isinstance(body["message"], str) and body["message"]
    return body


@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("run/", {"input": {"question": NUL}}, "input.question"),
        ("run-batch/", {"inputs": [{"question": "ok"}, {"question": NUL}]}, "inputs[1].question"),
        ("run/", {"input": {"question": "q", "extra": {NUL: 1}}}, f"input.extra.{NUL}"),
    ],
)
def test_a_nul_in_a_run_body_is_a_400_naming_the_path(api, program, url, body, path):
    response = api.post(f"/api/programs/{program.pk}/{url}", body, format="json")

    body = assert_envelope(response, 400)
    assert body["extra"]["path"] == path and "NUL" in body["message"]
    assert not Execution.objects.exists()


def test_a_nul_in_pipeline_constants_and_variables_is_a_400(api, program):
    steps = [{"id": "qa", "module": "qa", "inputs": {"question": NUL}}]
    pipeline = api.patch(f"/api/programs/{program.pk}/", {"pipeline": {"steps": steps}}, format="json")
    variables = api.post("/api/programs/", {"name": "v", "variables": {"k": [NUL]}}, format="json")

    assert assert_envelope(pipeline, 400)["extra"]["path"] == "pipeline.steps[0].inputs.question"
    assert assert_envelope(variables, 400)["extra"]["path"] == "variables.k[0]"
    assert Program.objects.get(pk=program.pk).pipeline == {"steps": [{"id": "qa", "module": "qa"}]}


def test_a_nul_in_a_dataset_import_is_a_400_json_list_and_file(api, user, program):
    dataset = dataset_create(owner=user, name="d", program=program)
    url = f"/api/datasets/{dataset.pk}/import/"
    records = [{"inputs": {"question": "q"}, "outputs": {"answer": NUL}}]

    as_json = api.post(url, records, format="json")
    line = json.dumps({"inputs": {"question": "q"}, "outputs": {"answer": NUL}})
    as_file = api.post(url, {"file": SimpleUploadedFile("d.jsonl", line.encode())}, format="multipart")

    as_csv = api.post(url, {"file": SimpleUploadedFile("d.csv", b"in.question,out.answer\nq\x00x,a\n")},
                      format="multipart")

    assert assert_envelope(as_json, 400)["extra"]["path"] == "[0].outputs.answer"
    errors = assert_envelope(as_file, 400)["extra"]["errors"]
    assert errors[0]["line"] == 1 and "outputs.answer" in errors[0]["message"] and "NUL" in errors[0]["message"]
    [csv_error] = assert_envelope(as_csv, 400)["extra"]["errors"]
    assert csv_error["line"] == 2 and csv_error["message"].startswith("inputs.question contains a NUL")
    assert not Example.objects.exists()


def test_a_nul_in_feedback_is_a_400(api, user):
    execution = ExecutionFactory(owner=user, status=ExecutionStatus.COMPLETED, output={"answer": "5"})
    response = api.post(f"/api/executions/{execution.pk}/feedback/", {"corrected_output": {"answer": NUL}},
                        format="json")
    assert assert_envelope(response, 400)["extra"]["path"] == "corrected_output.answer"
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("depth", [65, 1000, 5000])
def test_json_nested_too_deep_is_a_400(api, program, depth):
    raw = '{"input": {"question": ' + "[" * depth + '"x"' + "]" * depth + "}}"  # json.dumps itself would overflow
    response = api.post(f"/api/programs/{program.pk}/run/", raw, content_type="application/json")
    body = assert_envelope(response, 400)
    assert "nested" in body["message"]
    assert not Execution.objects.exists()


def test_the_depth_bound_is_a_setting(api, program, settings):
    settings.DSPEX_JSON_MAX_DEPTH = 8
    deep = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": nested(8)}}, format="json")
    assert assert_envelope(deep, 400)["message"].endswith("(DSPEX_JSON_MAX_DEPTH)")


def test_a_pipeline_spec_is_depth_checked_outside_the_api_too(user):
    deep_return = {"steps": [{"id": "qa", "module": "qa"}], "return": nested(500)}
    with pytest.raises(InvalidInput, match="nested deeper than"):
        program_create(owner=user, name="deep", pipeline=deep_return)


def test_a_body_over_the_upload_limit_is_a_413_envelope(api, program, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "x" * 20_000}}, format="json")
    body = assert_envelope(response, 413)
    assert body["extra"]["limit_bytes"] == 10_000


def test_unknown_api_routes_and_non_uuid_ids_are_json_404s(api, program):
    for url in ("/api/nothing-here/", "/api/programs/not-a-uuid/", "/api/programs/not-a-uuid/run/",
                "/api/programs/not-a-uuid/optimize/", f"/api/programs/{uuid.uuid4()}/run/",
                "/api/executions/1/cancel/", "/api/executions/../"):
        response = api.post(url, {}, format="json") if url.endswith(("run/", "optimize/", "cancel/")) else api.get(url)
        assert_envelope(response, 404)
    # Outside /api/ Django's own pages stay as they are.
    assert not client_json(api.get("/nothing-here/"))


def client_json(response) -> bool:
    return response["Content-Type"].startswith("application/json")


def test_an_unexpected_error_is_a_500_with_an_error_id_that_is_logged(client_for, user, program, caplog):
    client = client_for(user)
    client.raise_request_exception = False
    with mock.patch("cognitive.selectors.program_list", side_effect=RuntimeError("secret detail")), \
            caplog.at_level(logging.ERROR, logger="cognitive.api.middleware"):
        response = client.get("/api/programs/")

    body = assert_envelope(response, 500)
    error_id = body["extra"]["error_id"]
    assert "secret detail" not in response.content.decode() and "Traceback" not in response.content.decode()
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None


REDIS_DOWN = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        # A port nothing listens on: every cache call fails the way it does when Redis is down.
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}


def test_with_redis_down_run_and_run_batch_are_accepted_not_500(api, program, settings, caplog, no_broker):
    settings.CACHES = REDIS_DOWN
    no_broker.side_effect = ConnectionError("broker down too")
    with caplog.at_level(logging.WARNING):
        single = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "q"}}, format="json")
        batch = api.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": "q"}]}, format="json")

    assert single.status_code == 202, single.content
    assert batch.status_code == 202, batch.content
    assert Execution.objects.filter(status=ExecutionStatus.PENDING).count() == 2
    assert any("cache cannot be reached" in r.getMessage() for r in caplog.records)


def test_with_redis_down_sign_in_still_works(client_for, user, settings):
    settings.CACHES = REDIS_DOWN
    response = client_for().post("/api/auth/token/", {"username": user.username, "password": "pw"}, format="json")
    assert response.status_code == 200 and response.json()["token"]


@pytest.mark.parametrize(
    "when", ["0095-11-09T16:28:28.897017-16:43", "2020-01-01T00:00:00+16:00", "0001-01-01T00:00:00+10:00"]
)
def test_a_time_filter_the_database_cannot_compare_is_a_400(api, user, when):
    # Found by the schema fuzz on PostgreSQL: it refuses UTC offsets of 16 hours or more (a 500 before).
    ExecutionFactory(owner=user)
    response = api.get("/api/executions/", {"created_after": when})
    assert response.status_code == 400 and response.json()["message"].startswith("created_after:")
