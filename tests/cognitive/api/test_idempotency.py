"""Idempotency-Key on run and run-batch: a replay answers the first response with `Idempotent-Replayed: true`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cognitive.models import Batch, Execution, IdempotentRequest, LanguageModel, Module
from cognitive.services.idempotency import idempotent_begin, request_fingerprint
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]




def run(api, program, body, key=None):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return api.post(f"/api/programs/{program.pk}/run/", body, format="json", **headers)


def test_a_replayed_queued_run_answers_the_first_status_and_body(
    api, program, no_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = run(api, program, {"input": {"question": "q"}, "priority": 3}, key="k-1")
        # Key order does not make a different request.
        again = run(api, program, {"priority": 3, "input": {"question": "q"}}, key="k-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Execution.objects.count() == 1 and no_broker.call_count == 1


def test_the_replay_is_the_first_answer_even_after_the_run_moved_on(api, program):
    first = run(api, program, {"input": {"question": "q"}}, key="k-1").json()
    Execution.objects.filter(pk=first["execution"]).update(status="completed", output={"answer": "a"})

    again = run(api, program, {"input": {"question": "q"}}, key="k-1")

    assert again.json() == first and again.json()["status"] == "pending"


def test_a_replayed_sync_run_answers_the_same_output_without_running_again(api, user, program, local_lm):
    lm = LanguageModel.objects.create(name="local", model="openai/local", api_base=local_lm.url)
    Module.objects.filter(owner=user).update(lm=lm)
    body = {"input": {"question": "What is 2 + 3?"}, "wait": True}

    first = run(api, program, body, key="sync-1")
    calls = local_lm.stats()["chat_requests"]
    again = run(api, program, body, key="sync-1")

    assert first.status_code == again.status_code == 200, first.content
    assert first.json()["output"]["answer"]
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Execution.objects.filter(parent__isnull=True).count() == 1
    assert calls >= 1 and local_lm.stats()["chat_requests"] == calls


def test_a_failed_sync_run_is_replayed_with_its_error(api, user, program, local_lm):
    lm = LanguageModel.objects.create(name="local", model="openai/local", api_base=local_lm.url)
    Module.objects.filter(owner=user).update(lm=lm)
    # The local LM answers this without field markers, so DSPy cannot parse it: the run fails after
    # it was created, and that answer is the one to replay.
    body = {"input": {"question": "LOCAL_LM_FAIL_PARSE please"}, "wait": True}

    first = run(api, program, body, key="sync-2")
    again = run(api, program, body, key="sync-2")

    assert first.status_code == 422 and "execution" in first.json()["extra"], first.content
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again["Idempotent-Replayed"] == "true"


def test_the_same_key_with_a_different_body_is_a_422_and_runs_nothing(api, program):
    run(api, program, {"input": {"question": "q"}}, key="k-1")

    other = run(api, program, {"input": {"question": "another"}}, key="k-1")

    assert other.status_code == 422
    body = other.json()
    assert "different request" in body["message"] and body["extra"] == {"header": "Idempotency-Key"}
    assert Execution.objects.count() == 1


def test_the_same_key_on_another_program_is_a_different_request(api, user, program):
    run(api, program, {"input": {"question": "q"}}, key="k-1")
    other = program_activate(
        program=program_create(owner=user, name="p2", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )

    assert run(api, other, {"input": {"question": "q"}}, key="k-1").status_code == 422


def test_a_key_whose_first_request_is_still_running_is_a_409(api, user, program):
    body = {"input": {"question": "q"}}
    path = f"/api/programs/{program.pk}/run/"
    fingerprint = request_fingerprint(method="POST", path=path, body=body)
    assert idempotent_begin(owner=user, key="busy", fingerprint=fingerprint) is None

    response = run(api, program, body, key="busy")

    assert response.status_code == 409 and "still being processed" in response.json()["message"]
    assert not Execution.objects.exists()


def test_a_first_request_lost_long_ago_gives_its_key_to_the_retry(api, user, program, settings):
    body = {"input": {"question": "q"}}
    fingerprint = request_fingerprint(method="POST", path=f"/api/programs/{program.pk}/run/", body=body)
    idempotent_begin(owner=user, key="lost", fingerprint=fingerprint)
    long_ago = timezone.now() - timedelta(seconds=settings.DSPEX_EXECUTION_TIME_LIMIT + 1)
    IdempotentRequest.objects.filter(key="lost").update(created_at=long_ago)

    response = run(api, program, body, key="lost")

    assert response.status_code == 202 and Execution.objects.count() == 1


def test_a_rejected_request_releases_its_key_for_the_corrected_one(api, program):
    rejected = run(api, program, {"input": {"question": 5}}, key="k-1")
    corrected = run(api, program, {"input": {"question": "q"}}, key="k-1")

    assert rejected.status_code == 400
    assert corrected.status_code == 202 and "Idempotent-Replayed" not in corrected
    assert IdempotentRequest.objects.get().status_code == 202


def test_keys_belong_to_their_user(api, client_for, other_user, program):
    run(api, program, {"input": {"question": "q"}}, key="shared")
    signature = signature_create(owner=other_user, name="qa", spec="question: str -> answer: str")
    module_create(owner=other_user, name="qa", type="predict", signature=signature)
    theirs = program_activate(
        program=program_create(owner=other_user, name="p", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
    )

    # The same key is theirs to use: a run of their own, not this user's answer.
    response = run(client_for(other_user), theirs, {"input": {"question": "q"}}, key="shared")
    # Nor can they read this user's answer by replaying the key on this user's program.
    replay = run(client_for(other_user), program, {"input": {"question": "q"}}, key="shared")

    assert response.status_code == 202 and "Idempotent-Replayed" not in response
    assert Execution.objects.get(pk=response.json()["execution"]).owner == other_user
    assert replay.status_code == 404 and "Idempotent-Replayed" not in replay


def test_a_quoted_key_is_the_same_key(api, program):
    first = run(api, program, {"input": {"question": "q"}}, key='"abc"')
    again = run(api, program, {"input": {"question": "q"}}, key="abc")

    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()


@pytest.mark.parametrize("key", ["", "x" * 201, "caf\u00e9"])
def test_a_bad_key_is_a_400_naming_the_header(api, program, key):
    response = run(api, program, {"input": {"question": "q"}}, key=key)

    assert response.status_code == 400 and response.json()["extra"] == {"header": "Idempotency-Key"}
    assert not Execution.objects.exists()


def test_a_replayed_batch_is_the_same_batch(api, program, no_broker, django_capture_on_commit_callbacks):
    url = f"/api/programs/{program.pk}/run-batch/"
    body = {"inputs": [{"question": "a"}, {"question": "b"}]}

    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    with django_capture_on_commit_callbacks(execute=True) as replayed:
        again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Batch.objects.count() == 1 and Execution.objects.count() == 2
    assert no_broker.call_count >= 1 and not replayed  # nothing published again
