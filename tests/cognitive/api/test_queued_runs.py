"""The queued path through the API: 202, publish on commit, Idempotency-Key, batches, throttles."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cognitive.models import Execution, ExecutionStatus, Program
from cognitive.services.modules import module_create
from cognitive.services.programs import program_create
from cognitive.services.signatures import signature_create
from cognitive.services.versions import program_version_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]




def run(api, program, body, **headers):
    return api.post(f"/api/programs/{program.pk}/run/", body, format="json", **headers)


def test_queued_run_is_202_pending_and_published_after_commit(api, program, no_broker):
    response = run(api, program, {"input": {"question": "What is 1 + 1?"}, "priority": 2})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    execution = Execution.objects.get(pk=body["execution"])
    assert execution.status == ExecutionStatus.PENDING and execution.priority == 2
    assert no_broker.call_args.kwargs["args"] == [str(execution.pk)]
    assert no_broker.call_args.kwargs["priority"] == 2


def test_idempotency_key_returns_the_same_execution(api, program, no_broker):
    first = run(api, program, {"input": {"question": "q"}}, HTTP_IDEMPOTENCY_KEY="abc-1")
    again = run(api, program, {"input": {"question": "q"}}, HTTP_IDEMPOTENCY_KEY="abc-1")
    other = run(api, program, {"input": {"question": "q"}}, HTTP_IDEMPOTENCY_KEY="abc-2")
    assert first.json()["execution"] == again.json()["execution"] != other.json()["execution"]
    assert Execution.objects.filter(parent__isnull=True).count() == 2
    assert no_broker.call_count == 2


def test_run_of_a_draft_program_is_409(api, user):
    signature = signature_create(owner=user, name="qa2", spec="question -> answer")
    module_create(owner=user, name="qa2", type="predict", signature=signature)
    draft = program_create(owner=user, name="draft", pipeline={"steps": [{"id": "qa", "module": "qa2"}]})
    response = run(api, draft, {"input": {"question": "q"}})
    assert response.status_code == 409 and "draft" in response.json()["message"]


def test_batch_counts_progress_and_cancel(api, program, no_broker):
    response = api.post(
        f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": str(i)} for i in range(5)]}, format="json"
    )
    assert response.status_code == 202, response.content
    batch = response.json()["batch"]
    assert batch["size"] == 5 and batch["counts"]["pending"] == 5 and batch["progress"] == 0
    assert no_broker.call_count == 5
    first = Execution.objects.filter(batch_id=batch["id"]).first()
    Execution.objects.filter(pk=first.pk).update(status=ExecutionStatus.COMPLETED)
    cancelled = api.post(f"/api/batches/{batch['id']}/cancel/").json()
    assert cancelled["counts"] == {**cancelled["counts"], "completed": 1, "cancelled": 4, "pending": 0}
    assert cancelled["progress"] == 1.0


def test_batch_input_errors_name_the_item(api, program, settings):
    settings.DSPEX_BATCH_MAX = 3
    too_many = api.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": [{}] * 4}, format="json")
    assert too_many.status_code == 400 and "at most 3" in too_many.json()["message"]
    bad_item = api.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": "a"}, 7]}, format="json")
    assert bad_item.status_code == 400 and "inputs[1]" in bad_item.json()["message"]


def test_run_is_throttled_per_user_with_retry_after(api, client_for, other_user, program, settings):
    cache.clear()
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    with mock.patch.dict(rates, {"run": "3/min"}), mock.patch(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {**rates, "run": "3/min"}
    ):
        codes = [run(api, program, {"input": {"question": "q"}}).status_code for _ in range(4)]
        assert codes == [202, 202, 202, 429]
        refused = run(api, program, {"input": {"question": "q"}})
        assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
        assert refused.json()["message"]
        # Another user has a budget of their own (and cannot see this program at all).
        assert run(client_for(other_user), program, {"input": {"question": "q"}}).status_code == 404
    cache.clear()


@pytest.mark.parametrize(
    ("bad", "path"), [({"question": 5}, "inputs[1].question"), ({"nope": "x"}, "inputs[1].nope")]
)
def test_batch_inputs_are_checked_against_the_pipeline_before_anything_is_queued(api, program, no_broker, bad, path):
    from cognitive.models import Batch

    response = api.post(
        f"/api/programs/{program.pk}/run-batch/", {"inputs": [{"question": "a"}, bad]}, format="json"
    )

    assert response.status_code == 400, response.content
    body = response.json()
    assert "inputs[1]" in body["message"] and "inputs[0]" not in body["message"]
    assert body["extra"]["path"] == path
    assert not Execution.objects.exists() and not Batch.objects.exists()
    assert not no_broker.called


def test_a_queued_run_pins_the_active_version_without_reading_its_state(api, program):
    version = program_version_snapshot(program=program)
    Program.objects.filter(pk=program.pk).update(active_version=version)

    with CaptureQueriesContext(connection) as queries:
        response = run(api, program, {"input": {"question": "q"}})

    assert response.status_code == 202, response.content
    assert Execution.objects.get(pk=response.json()["execution"]).version_id == version.pk
    # Optimized demos live in the state; a run request has no use for them.
    assert not [q["sql"] for q in queries.captured_queries if '"cognitive_programversion"."state"' in q["sql"]]
