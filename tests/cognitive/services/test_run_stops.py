"""A run stops at its next LM call when it is cancelled or out of time, not at the end of its step."""

from __future__ import annotations

from unittest import mock

import pytest

from cognitive.models import Execution, ExecutionStatus
from cognitive.services.execution_jobs import execution_cancel
from cognitive.services.jobs import core
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory, UserFactory
from workers.executions import run as run_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

CHAINS = 6  # one step: six chain-of-thought calls in a row, then the comparison


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def chains(owner, local_lm):
    lm = LanguageModelFactory(api_base=local_lm.url)
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    return module_create(
        owner=owner, name="chains", type="multi_chain_comparison", signature=signature, lm=lm, config={"M": CHAINS}
    )


def queued_run(owner) -> Execution:
    program = program_create(owner=owner, name="p", pipeline={"steps": [{"id": "s", "module": "chains"}]})
    program = program_activate(program=program)
    return Execution.objects.create(owner=owner, program=program, input={"question": "What is 1 + 1?"})


def test_a_run_cancelled_inside_a_step_makes_no_further_lm_call(owner, chains, local_lm, settings):
    settings.DSPEX_CANCEL_CHECK_SECONDS = 0
    execution = queued_run(owner)
    real_is_cancelled = core.is_cancelled

    def cancel_after_two_calls(kind, job_id):
        # Someone cancels while the step is between its second and third LM call.
        if local_lm.stats()["chat_requests"] >= 2 and Execution.objects.get(pk=job_id).status == "running":
            execution_cancel(execution=Execution.objects.get(pk=job_id))
        return real_is_cancelled(kind, job_id)

    with mock.patch.object(core, "is_cancelled", side_effect=cancel_after_two_calls):
        assert run_task(str(execution.pk)) == "cancelled"

    assert local_lm.stats()["chat_requests"] == 2, "only the calls made before the cancel may happen"
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.CANCELLED and row.output is None
    assert [a["outcome"] for a in row.attempts] == ["cancelled"]


def test_an_uncancelled_run_makes_every_call_and_asks_the_database_rarely(owner, chains, local_lm, settings):
    settings.DSPEX_CANCEL_CHECK_SECONDS = 3600
    execution = queued_run(owner)
    with mock.patch.object(core, "is_cancelled", wraps=core.is_cancelled) as asked:
        assert run_task(str(execution.pk)) == "completed"
    assert local_lm.stats()["chat_requests"] == CHAINS + 1
    assert asked.call_count == 0  # within DSPEX_CANCEL_CHECK_SECONDS of the claim nothing is asked


def test_a_synchronous_run_past_its_deadline_is_handed_to_a_worker(api_for_owner, owner, chains, local_lm, settings,
                                                                   no_broker):
    settings.DSPEX_SYNC_RUN_DEADLINE_SECONDS = 0.3
    local_lm.configure(latency_ms=200)
    response = api_for_owner.post(
        f"/api/modules/{chains.pk}/execute/", {"input": {"question": "What is 1 + 1?"}}, format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    row = Execution.objects.get(pk=body["execution"])
    assert body["status"] == row.status == ExecutionStatus.PENDING
    assert row.error["type"] == "DeadlineExceeded"
    assert [a["outcome"] for a in row.attempts] == ["handed-off"]
    assert no_broker.call_args.kwargs["args"] == [str(row.pk)]  # a worker takes it from here
    assert local_lm.stats()["chat_requests"] < CHAINS + 1

    # The worker finishes it: the next attempt, to completion.
    Execution.objects.filter(pk=row.pk).update(run_after=None)
    local_lm.configure(latency_ms=0)
    assert run_task(str(row.pk)) == "completed"
    row.refresh_from_db()
    assert row.status == ExecutionStatus.COMPLETED and row.attempt == 2
    assert [a["outcome"] for a in row.attempts] == ["handed-off", "completed"]


@pytest.fixture
def api_for_owner(client_for, owner):
    return client_for(owner)
