"""Datasets, import/export and execution feedback over REST."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cognitive.models import Dataset, Example, ExecutionStatus
from cognitive.services.datasets import dataset_create, dataset_import
from tests.factories import ExecutionFactory, ProgramFactory

pytestmark = pytest.mark.django_db

RECORDS = [
    {"inputs": {"q": "2 + 2"}, "outputs": {"a": "4"}},
    {"inputs": {"q": "sky"}, "outputs": {"a": "blue"}, "split": "val"},
]
JSONL = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()


def _dataset(owner, name="qa"):
    return dataset_create(owner=owner, name=name, program=ProgramFactory(owner=owner))


def test_create_list_retrieve_delete(api, user):
    program = ProgramFactory(owner=user)
    created = api.post("/api/datasets/", {"name": "qa", "program": str(program.pk)}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    summary = (body["name"], body["program"], body["example_count"], body["owner"])
    assert summary == ("qa", str(program.pk), 0, user.username)
    again = api.post("/api/datasets/", {"name": "qa", "program": str(program.pk)}, format="json")
    assert again.status_code == 409 and again.json()["message"] == "a dataset named 'qa' already exists"
    assert [d["name"] for d in api.get("/api/datasets/").json()["results"]] == ["qa"]
    assert api.get(f"/api/datasets/{body['id']}/").status_code == 200
    assert api.delete(f"/api/datasets/{body['id']}/").status_code == 204
    assert not Dataset.objects.exists()


def test_create_on_another_users_program_is_a_400(api, other_user):
    program = ProgramFactory(owner=other_user)
    response = api.post("/api/datasets/", {"name": "qa", "program": str(program.pk)}, format="json")
    assert response.status_code == 400 and response.json()["message"].startswith("program:")


@pytest.mark.parametrize("who, read, delete", [("anonymous", 401, 401), ("other", 404, 404), ("staff", 200, 204)])
def test_access(client_for, user, other_user, staff, who, read, delete):
    dataset = _dataset(user)
    client = client_for({"anonymous": None, "other": other_user, "staff": staff}[who])
    for route in ("", "examples/", "export/"):
        assert client.get(f"/api/datasets/{dataset.pk}/{route}").status_code == read, route
    imported = client.post(f"/api/datasets/{dataset.pk}/import/", RECORDS, format="json")
    assert imported.status_code == (201 if who == "staff" else read)
    listed = client.get("/api/datasets/")
    assert listed.status_code == (401 if who == "anonymous" else 200)
    if who == "other":
        assert listed.json()["results"] == []
    assert client.delete(f"/api/datasets/{dataset.pk}/").status_code == delete


def test_import_file_uploads_by_extension_or_format_field(api, user):
    dataset = _dataset(user)
    url = f"/api/datasets/{dataset.pk}/import/"
    response = api.post(url, {"file": SimpleUploadedFile("data.jsonl", JSONL)}, format="multipart")
    assert response.status_code == 201 and response.json() == {"imported": 2}
    csv = b"in.q,out.a,split\nwhat,that,val\n"
    response = api.post(url, {"file": SimpleUploadedFile("upload.txt", csv), "format": "csv"}, format="multipart")
    assert response.status_code == 201 and response.json() == {"imported": 1}
    response = api.post(url, {"file": SimpleUploadedFile("upload.txt", csv)}, format="multipart")
    assert response.status_code == 400 and "cannot tell the format" in response.json()["message"]
    assert api.get(f"/api/datasets/{dataset.pk}/").json()["example_count"] == 3


def test_import_json_body_reports_every_bad_line_and_imports_nothing(api, user):
    dataset = _dataset(user)
    body = [
        {"inputs": {"q": "ok"}, "outputs": {"a": "ok"}},
        {"inputs": {"q": "no outputs"}},
        {"inputs": {"q": "ok"}, "outputs": {"a": "ok"}, "split": "test"},
        {"inputs": {}, "outputs": {"a": "x"}},
    ]
    response = api.post(f"/api/datasets/{dataset.pk}/import/", body, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["message"] == "3 bad lines; nothing was imported"
    assert [e["line"] for e in payload["extra"]["errors"]] == [2, 3, 4]
    assert not Example.objects.exists()


def test_import_of_a_bad_file_lists_its_lines(api, user):
    dataset = _dataset(user)
    content = JSONL + b"oops\n" + JSONL + b'{"inputs": {"q": 1}}\n'
    response = api.post(
        f"/api/datasets/{dataset.pk}/import/", {"file": SimpleUploadedFile("d.jsonl", content)}, format="multipart"
    )
    assert response.status_code == 400
    assert [e["line"] for e in response.json()["extra"]["errors"]] == [3, 6]
    assert not Example.objects.exists()


def test_import_without_content_explains_what_to_send(api, user):
    response = api.post(f"/api/datasets/{_dataset(user).pk}/import/", {"x": 1}, format="json")
    assert response.status_code == 400 and "send a file" in response.json()["message"]


def test_export_downloads_jsonl_that_imports_back(api, user):
    dataset = _dataset(user)
    dataset_import(dataset=dataset, content=JSONL, format="jsonl")
    response = api.get(f"/api/datasets/{dataset.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert "attachment" in response["Content-Disposition"]
    copy = _dataset(user, "copy")
    upload = SimpleUploadedFile("export.jsonl", response.content)
    assert api.post(f"/api/datasets/{copy.pk}/import/", {"file": upload}, format="multipart").json() == {"imported": 2}
    assert api.get(f"/api/datasets/{copy.pk}/export/").content == response.content


def test_examples_are_paginated_and_filtered(api, user):
    dataset = _dataset(user)
    dataset_import(dataset=dataset, content=JSONL, format="jsonl")
    url = f"/api/datasets/{dataset.pk}/examples/"
    page = api.get(url, {"limit": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    assert [e["outputs"] for e in api.get(url, {"split": "val"}).json()["results"]] == [{"a": "blue"}]
    assert api.get(url, {"source": "feedback"}).json()["count"] == 0
    assert api.get(url, {"split": "test"}).status_code == 400


def test_feedback_creates_then_updates_one_example(api, user):
    execution = ExecutionFactory(owner=user, status=ExecutionStatus.COMPLETED, output={"answer": "5"})
    url = f"/api/executions/{execution.pk}/feedback/"
    first = api.post(url, {"score": 0, "corrected_output": {"answer": "4"}}, format="json")
    assert first.status_code == 201, first.json()
    body = first.json()
    summary = (body["source"], body["split"], body["outputs"], body["score"])
    assert summary == ("feedback", "train", {"answer": "4"}, 0.0)
    assert body["execution"] == str(execution.pk)
    second = api.post(url, {"score": 1}, format="json")
    assert second.status_code == 201 and second.json()["id"] == body["id"] and second.json()["score"] == 1.0
    dataset = Dataset.objects.get()
    assert dataset.name == f"{execution.program.name} feedback"
    examples = api.get(f"/api/datasets/{dataset.pk}/examples/", {"source": "feedback"}).json()
    assert examples["count"] == 1


def test_feedback_refusals(api, client_for, user, other_user, staff):
    others = ExecutionFactory(owner=other_user, status=ExecutionStatus.COMPLETED, output={"a": "1"})
    assert api.post(f"/api/executions/{others.pk}/feedback/", {}, format="json").status_code == 404
    staff_response = client_for(staff).post(f"/api/executions/{others.pk}/feedback/", {}, format="json")
    assert staff_response.status_code == 403 and "only the user who ran" in staff_response.json()["message"]
    failed = ExecutionFactory(owner=user, status=ExecutionStatus.FAILED)
    response = api.post(f"/api/executions/{failed.pk}/feedback/", {}, format="json")
    assert response.status_code == 409 and response.json()["message"].endswith("this one is failed")
    parent = ExecutionFactory(owner=user, status=ExecutionStatus.COMPLETED, output={"a": "1"})
    child = ExecutionFactory(
        owner=user, program=parent.program, parent=parent, status=ExecutionStatus.COMPLETED, output={"a": "1"}
    )
    response = api.post(f"/api/executions/{child.pk}/feedback/", {}, format="json")
    assert response.status_code == 400 and "give feedback on that one" in response.json()["message"]
    response = api.post(f"/api/executions/{parent.pk}/feedback/", {"corrected_output": [1]}, format="json")
    assert response.status_code == 400 and "corrected_output" in response.json()["message"]
    assert client_for().post(f"/api/executions/{parent.pk}/feedback/", {}, format="json").status_code == 401
    assert not Example.objects.exists()


def test_changed_at_moves_on_import_and_feedback(api, user):
    dataset = _dataset(user)
    assert api.get(f"/api/datasets/{dataset.pk}/").json()["changed_at"] is None
    api.post(f"/api/datasets/{dataset.pk}/import/", RECORDS, format="json")
    after_import = api.get(f"/api/datasets/{dataset.pk}/").json()["changed_at"]
    assert after_import is not None
    execution = ExecutionFactory(
        owner=user, program=dataset.program, status=ExecutionStatus.COMPLETED, output={"a": "1"}
    )
    api.post(f"/api/executions/{execution.pk}/feedback/", {}, format="json")
    assert api.get(f"/api/datasets/{dataset.pk}/").json()["changed_at"] > after_import
