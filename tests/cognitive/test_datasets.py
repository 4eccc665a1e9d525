"""Datasets through the service: import (all or nothing), export, and feedback from executions."""

from __future__ import annotations

import json

import pytest

from cognitive.errors import Conflict, InvalidInput, PermissionDenied
from cognitive.models import Dataset, Example, ExecutionStatus
from cognitive.services import datasets
from cognitive.services.datasets import dataset_create, dataset_export_jsonl, dataset_import, execution_feedback
from tests.factories import ExecutionFactory, ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(user):
    return dataset_create(owner=user, name="qa", program=ProgramFactory(owner=user))


def _rows(dataset):
    return [(e.inputs, e.outputs, e.split, e.source) for e in dataset.examples.order_by("created_at", "id")]


JSONL = (
    '{"inputs": {"question": "2 + 2"}, "outputs": {"answer": "4"}}\n'
    "\n"
    '{"inputs": {"question": "capital of France"}, "outputs": {"answer": "Paris"}, "split": "val"}\n'
)


def test_create_needs_a_program_the_owner_can_see(user, other_user):
    with pytest.raises(InvalidInput, match="program not found"):
        dataset_create(owner=user, name="x", program=ProgramFactory(owner=other_user))


def test_create_refuses_a_taken_name(user, dataset):
    with pytest.raises(Conflict, match="a dataset named 'qa' already exists"):
        dataset_create(owner=user, name="qa", program=dataset.program)


def test_import_jsonl_skips_blank_lines_and_defaults_split_to_train(dataset):
    before = Dataset.objects.get(pk=dataset.pk).changed_at
    assert dataset_import(dataset=dataset, content=JSONL.encode(), format="jsonl") == 2
    assert _rows(dataset) == [
        ({"question": "2 + 2"}, {"answer": "4"}, "train", "import"),
        ({"question": "capital of France"}, {"answer": "Paris"}, "val", "import"),
    ]
    assert before is None and Dataset.objects.get(pk=dataset.pk).changed_at is not None


def test_import_csv_maps_prefixed_columns(dataset):
    content = 'in.question,in.context,out.answer,split\n"2 + 2","math, easy",4,val\nsky?,,blue,\n'
    assert dataset_import(dataset=dataset, content=content, format="csv") == 2
    assert _rows(dataset) == [
        ({"question": "2 + 2", "context": "math, easy"}, {"answer": "4"}, "val", "import"),
        ({"question": "sky?", "context": ""}, {"answer": "blue"}, "train", "import"),
    ]


def test_import_csv_with_an_unknown_column_names_it(dataset):
    with pytest.raises(InvalidInput, match="'question'") as info:
        dataset_import(dataset=dataset, content="question,out.answer\nq,a\n", format="csv")
    assert info.value.extra["errors"] == [{"line": 1, "message": "unexpected column 'question'"}]


def test_import_json_list(dataset):
    records = [{"inputs": {"q": "a"}, "outputs": {"a": 1}, "split": "val"}, {"inputs": {"q": "b"}, "outputs": {"a": 2}}]
    content = json.dumps(records)
    assert dataset_import(dataset=dataset, content=content, format="json") == 2
    assert [e.split for e in dataset.examples.order_by("created_at", "id")] == ["val", "train"]


def test_every_bad_line_is_reported_and_nothing_is_imported(dataset):
    content = "\n".join(
        [
            '{"inputs": {"q": "fine"}, "outputs": {"a": "ok"}}',
            "{not json",
            '{"inputs": {"q": "x"}}',
            '{"inputs": {"q": "fine"}, "outputs": {"a": "ok"}}',
            '{"inputs": {"q": "x"}, "outputs": {"a": "y"}, "split": "test"}',
            '{"inputs": "q", "outputs": {"a": "y"}, "extra": 1}',
            "[1, 2]",
        ]
    )
    with pytest.raises(InvalidInput) as info:
        dataset_import(dataset=dataset, content=content, format="jsonl")
    assert info.value.message == "5 bad lines; nothing was imported"
    errors = info.value.extra["errors"]
    assert [e["line"] for e in errors] == [2, 3, 5, 6, 7]
    assert "not valid JSON" in errors[0]["message"]
    assert "'outputs' is missing" in errors[1]["message"]
    assert "split must be one of train, val" in errors[2]["message"]
    assert "unknown key(s) 'extra'" in errors[3]["message"]
    assert not Example.objects.exists()
    assert Dataset.objects.get(pk=dataset.pk).changed_at is None


def test_bad_csv_rows_report_their_file_lines(dataset):
    content = "in.q,out.a,split\nq1,a1,train\nq2,a2\nq3,a3,dev\n"
    with pytest.raises(InvalidInput, match="2 bad lines") as info:
        dataset_import(dataset=dataset, content=content, format="csv")
    assert [e["line"] for e in info.value.extra["errors"]] == [3, 4]
    assert not Example.objects.exists()


def test_json_positions_are_reported(dataset):
    with pytest.raises(InvalidInput, match="1 bad line;") as info:
        dataset_import(dataset=dataset, content=[{"inputs": {"q": 1}, "outputs": {"a": 1}}, 3], format="json")
    assert info.value.extra["errors"][0]["line"] == 2


def test_limits(dataset, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(InvalidInput, match="at most 100 bytes"):
        dataset_import(dataset=dataset, content=JSONL * 3, format="jsonl")
    monkeypatch.setattr(datasets, "MAX_IMPORT_BYTES", 10_000)
    monkeypatch.setattr(datasets, "MAX_IMPORT_EXAMPLES", 3)
    with pytest.raises(InvalidInput, match="more than 3 examples"):
        dataset_import(dataset=dataset, content=JSONL * 2, format="jsonl")
    with pytest.raises(InvalidInput, match="format must be one of"):
        dataset_import(dataset=dataset, content=JSONL, format="xml")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        dataset_import(dataset=dataset, content=b"\xff\xfe", format="jsonl")
    with pytest.raises(InvalidInput, match="no examples"):
        dataset_import(dataset=dataset, content="\n\n", format="jsonl")
    assert not Example.objects.exists()


def test_export_round_trips(user, dataset):
    dataset_import(dataset=dataset, content=JSONL, format="jsonl")
    dataset_import(dataset=dataset, content=[{"inputs": {"q": "é"}, "outputs": {"a": [1, {"b": None}]}}], format="json")
    exported = dataset_export_jsonl(dataset)
    assert len(exported.splitlines()) == 3
    copy = dataset_create(owner=user, name="copy", program=dataset.program)
    assert dataset_import(dataset=copy, content=exported.encode(), format="jsonl") == 3
    assert _rows(copy) == _rows(dataset)
    assert dataset_export_jsonl(copy) == exported


# --------------------------------------------------------------------------- feedback


def _completed(owner, **kwargs):
    kwargs.setdefault("output", {"answer": "5"})
    return ExecutionFactory(owner=owner, status=ExecutionStatus.COMPLETED, **kwargs)


def test_feedback_creates_a_feedback_dataset_then_updates_the_same_example(user):
    execution = _completed(user)
    example = execution_feedback(execution=execution, owner=user, score=0.0, corrected_output={"answer": "4"})
    dataset = example.dataset
    assert dataset.name == f"{execution.program.name} feedback" and dataset.program == execution.program
    assert (example.inputs, example.outputs, example.split, example.source, example.score) == (
        {"question": "What is 2 + 2?"}, {"answer": "4"}, "train", "feedback", 0.0,
    )
    first_change = Dataset.objects.get(pk=dataset.pk).changed_at
    again = execution_feedback(execution=execution, owner=user, score=1.0)
    assert again.pk == example.pk and Example.objects.count() == 1
    again.refresh_from_db()
    assert (again.outputs, again.score) == ({"answer": "4"}, 1.0)
    assert Dataset.objects.get(pk=dataset.pk).changed_at > first_change


def test_feedback_goes_to_the_programs_existing_dataset_with_the_execution_output(user, dataset):
    execution = _completed(user, program=dataset.program)
    example = execution_feedback(execution=execution, owner=user)
    assert example.dataset == dataset and example.outputs == {"answer": "5"} and example.score is None
    assert Dataset.objects.filter(program=dataset.program).count() == 1


def test_feedback_refusals(user, other_user):
    with pytest.raises(PermissionDenied, match="only the user who ran"):
        execution_feedback(execution=_completed(other_user), owner=user)
    failed = ExecutionFactory(owner=user, status=ExecutionStatus.FAILED)
    with pytest.raises(Conflict, match="this one is failed"):
        execution_feedback(execution=failed, owner=user)
    parent = _completed(user)
    child = _completed(user, program=parent.program, parent=parent, step_id="s1")
    with pytest.raises(InvalidInput, match="is a step of execution"):
        execution_feedback(execution=child, owner=user)
    with pytest.raises(InvalidInput, match="single module"):
        execution_feedback(execution=_completed(user, program=None), owner=user)
    with pytest.raises(InvalidInput, match="no output"):
        execution_feedback(execution=_completed(user, output=None), owner=user)
    with pytest.raises(InvalidInput, match="score must be a finite number"):
        execution_feedback(execution=parent, owner=user, score=float("nan"))
    with pytest.raises(InvalidInput, match="corrected_output must be"):
        execution_feedback(execution=parent, owner=user, corrected_output="4")
    assert not Example.objects.exists() and not Dataset.objects.exists()


def test_another_users_program_does_not_receive_feedback_in_their_dataset():
    owner = UserFactory()
    execution = _completed(owner)
    execution_feedback(execution=execution, owner=owner)
    assert Dataset.objects.get().owner == owner


# --------------------------------------------------------------------------- admin


def test_admin_import_export_and_change_page(client, staff, dataset):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(staff)
    base = f"/admin/cognitive/dataset/{dataset.pk}"
    assert client.get(f"{base}/import/").status_code == 200
    bad = SimpleUploadedFile("bad.jsonl", b'{"inputs": {"q": 1}}\n{oops\n')
    page = client.post(f"{base}/import/", {"file": bad}, follow=True)
    assert "2 bad lines" in page.content.decode() and "line 2:" in page.content.decode()
    assert not Example.objects.exists()
    good = SimpleUploadedFile("good.jsonl", JSONL.encode())
    page = client.post(f"{base}/import/", {"file": good}, follow=True)
    assert [str(m) for m in page.context["messages"]] == ["imported 2 examples"]
    change = client.get(f"{base}/change/").content.decode()
    assert "capital of France" in change and f"{base}/export/" in change
    exported = client.get(f"{base}/export/")
    assert exported["Content-Type"] == "application/x-ndjson"
    assert exported.content.decode() == dataset_export_jsonl(dataset)
    assert client.get("/admin/cognitive/dataset/").status_code == 200
