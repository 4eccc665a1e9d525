"""A batch's results through the API and the admin; executions lists show top-level runs, steps in pipeline order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from cognitive.models import Batch, Execution, ExecutionStatus
from cognitive.selectors_runs import batch_status
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

PIPELINE = {
    "steps": [
        {"id": "search", "parallel": [{"id": "left", "module": "qa"}, {"id": "right", "module": "qa"}]},
        {"id": "answer", "module": "qa"},
    ]
}


@pytest.fixture
def program(user):
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module_create(owner=user, name="qa", type="predict", signature=signature)
    return program_activate(program=program_create(owner=user, name="p", pipeline=PIPELINE))


def submit_batch(api, program, n: int = 3) -> dict:
    response = api.post(
        f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": str(i)} for i in range(n)]}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()["batch"]


def finish(execution: Execution, status: str, output=None) -> None:
    Execution.objects.filter(pk=execution.pk).update(status=status, output=output)


def test_a_batch_lists_its_executions_with_outputs_paginated(api, program):
    batch = submit_batch(api, program, n=3)
    first, *_ = Execution.objects.filter(batch_id=batch["id"]).order_by("created_at", "id")
    finish(first, ExecutionStatus.COMPLETED, {"answer": "0"})
    submit_batch(api, program, n=2)  # another batch's runs stay out

    page = api.get(f"/api/batches/{batch['id']}/executions/", {"limit": 2}).json()
    completed = api.get(f"/api/batches/{batch['id']}/executions/", {"status": "completed"}).json()
    filtered = api.get("/api/executions/", {"batch": batch["id"]}).json()

    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert page["results"][0]["id"] == str(first.pk) and page["results"][0]["output"] == {"answer": "0"}
    assert [e["id"] for e in completed["results"]] == [str(first.pk)]
    assert filtered["count"] == 3
    assert {e["id"] for e in filtered["results"]} == {
        str(pk) for pk in Execution.objects.filter(batch_id=batch["id"]).values_list("pk", flat=True)
    }


def test_another_users_batch_is_a_404_and_its_id_filters_to_nothing(api, client_for, other_user, program):
    batch = submit_batch(api, program)
    theirs = client_for(other_user)

    assert theirs.get(f"/api/batches/{batch['id']}/executions/").status_code == 404
    assert theirs.get("/api/executions/", {"batch": batch["id"]}).json()["count"] == 0
    assert theirs.get("/api/executions/", {"batch": "00000000-0000-0000-0000-000000000000"}).json()["count"] == 0
    assert theirs.get("/api/executions/", {"batch": "nope"}).status_code == 400


def test_the_batch_detail_has_a_status_that_follows_its_executions(api, program):
    batch = submit_batch(api, program, n=3)
    runs = list(Execution.objects.filter(batch_id=batch["id"]))

    def status() -> str:
        body = api.get(f"/api/batches/{batch['id']}/").json()
        return body["status"], body["done"]

    assert status() == ("pending", 0)
    finish(runs[0], ExecutionStatus.COMPLETED)
    assert status() == ("running", 1)
    finish(runs[1], ExecutionStatus.FAILED)
    finish(runs[2], ExecutionStatus.COMPLETED)
    assert status() == ("partially_failed", 3)
    assert api.get("/api/batches/").json()["results"][0]["status"] == "partially_failed"


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"pending": 3}, "pending"),
        ({"pending": 2, "running": 1}, "running"),
        ({"pending": 2, "cancelled": 1}, "running"),
        ({"completed": 3}, "completed"),
        ({"completed": 2, "failed": 1}, "partially_failed"),
        ({"failed": 2, "cancelled": 1}, "failed"),
        ({"completed": 1, "cancelled": 2}, "cancelled"),
        ({"cancelled": 3}, "cancelled"),
    ],
)
def test_batch_status_rules(counts, expected):
    assert batch_status(counts) == expected


def test_a_cancelled_batch_is_cancelled(api, program):
    batch = submit_batch(api, program, n=2)

    body = api.post(f"/api/batches/{batch['id']}/cancel/").json()

    assert (body["status"], body["done"], body["progress"]) == ("cancelled", 2, 1.0)


def make_run_with_steps(user, program) -> tuple[Execution, list[Execution]]:
    parent = Execution.objects.create(owner=user, program=program, status=ExecutionStatus.COMPLETED, attempt=1)
    now = timezone.now()
    steps = []
    # Finished out of pipeline order: the parallel group's second member first, and `answer` last.
    for step_id, seconds in (("right", 1), ("left", 2), ("answer", 3)):
        step = Execution.objects.create(
            owner=user, program=program, parent=parent, step_id=step_id, attempt=1, status=ExecutionStatus.COMPLETED
        )
        Execution.objects.filter(pk=step.pk).update(created_at=now + timedelta(seconds=seconds))
        steps.append(step)
    return parent, steps


def test_executions_list_top_level_runs_unless_root_is_false(api, user, program):
    parent, steps = make_run_with_steps(user, program)

    default = api.get("/api/executions/").json()
    everything = api.get("/api/executions/", {"root": "false"}).json()
    children = api.get("/api/executions/", {"parent": str(parent.pk)}).json()

    assert [e["id"] for e in default["results"]] == [str(parent.pk)]
    assert everything["count"] == 4
    assert {e["id"] for e in children["results"]} == {str(s.pk) for s in steps}


def test_a_runs_detail_shows_its_steps_in_pipeline_order(api, user, program):
    parent, _ = make_run_with_steps(user, program)

    detail = api.get(f"/api/executions/{parent.pk}/").json()

    assert [c["step_id"] for c in detail["children"]] == ["left", "right", "answer"]


# --------------------------------------------------------------------------- the admin


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_the_admin_lists_batches_with_progress(api, admin_client, program):
    batch = submit_batch(api, program, n=4)
    finish(Execution.objects.filter(batch_id=batch["id"]).first(), ExecutionStatus.COMPLETED)

    listing = admin_client.get("/admin/cognitive/batch/").content.decode()
    page = admin_client.get(f"/admin/cognitive/batch/{batch['id']}/change/")
    runs = admin_client.get(f"/admin/cognitive/execution/?batch__id__exact={batch['id']}")

    assert "<progress value='1' max='4'" in listing and "1/4 (25%)" in listing and "running" in listing
    assert page.status_code == 200 and "pending 3, completed 1" in page.content.decode()
    assert runs.status_code == 200 and runs.context["cl"].result_count == 4
    assert Batch.objects.count() == 1


def test_the_admin_lists_top_level_runs_and_shows_steps_in_pipeline_order(admin_client, user, program):
    parent, _ = make_run_with_steps(user, program)

    default = admin_client.get("/admin/cognitive/execution/")
    everything = admin_client.get("/admin/cognitive/execution/", {"level": "all"})
    only_steps = admin_client.get("/admin/cognitive/execution/", {"parent__id__exact": str(parent.pk)})
    page = admin_client.get(f"/admin/cognitive/execution/{parent.pk}/change/")

    assert [e.pk for e in default.context["cl"].result_list] == [parent.pk]
    assert everything.context["cl"].result_count == 4
    assert only_steps.context["cl"].result_count == 3
    inline = page.context["inline_admin_formsets"][0]
    assert [form.original.step_id for form in inline] == ["left", "right", "answer"]
    html = page.content.decode()
    assert html.index("<b>left</b>") < html.index("<b>right</b>") < html.index("<b>answer</b>")
