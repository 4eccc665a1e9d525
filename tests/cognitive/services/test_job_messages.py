"""Batches published as messages carrying several ids, and a worker running such a message (one process)."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cognitive.models import Execution, ExecutionStatus, Module, Program
from cognitive.services import execution_jobs
from cognitive.services.execution_jobs import EXECUTIONS, execution_cancel
from cognitive.services.jobs import publishing
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create, signature_update
from tests.factories import LanguageModelFactory, UserFactory

# -- how many ids a message carries -------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "size"),
    [(0, 1), (1, 1), (31, 1), (32, 1), (63, 1), (64, 2), (95, 2), (96, 3), (511, 15), (512, 16), (10_000, 16)],
)
def test_ids_per_message_at_the_default_maximum(settings, count, size):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 16
    assert publishing.ids_per_message(count) == size


@pytest.mark.parametrize(
    ("maximum", "count", "size"),
    [(4, 64, 2), (4, 128, 4), (4, 10_000, 4), (1, 10_000, 1), (100, 31, 1), (100, 3200, 100), (100, 10_000, 100)],
)
def test_ids_per_message_follows_the_setting(settings, maximum, count, size):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = maximum
    assert publishing.ids_per_message(count) == size


# -- publishing ----------------------------------------------------------------------------


@pytest.fixture
def run_many(broker_messages):
    return broker_messages["workers.executions.run_many"]


def ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


@pytest.mark.django_db
def test_a_small_batch_goes_out_as_one_message_per_id(no_broker, run_many, django_assert_num_queries):
    batch = ids(5)
    with django_assert_num_queries(0):  # the rows were written with published_at already
        publishing.publish_many(EXECUTIONS, batch, priority=3)

    assert not run_many.called
    assert [c.kwargs["args"] for c in no_broker.call_args_list] == [[str(i)] for i in batch]
    assert {c.kwargs["priority"] for c in no_broker.call_args_list} == {3}


@pytest.mark.django_db
def test_a_large_batch_shares_messages_covering_every_id_once_in_order(
    no_broker, run_many, settings, django_assert_num_queries
):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 16
    settings.DSPEX_EXECUTION_SOFT_TIME_LIMIT = 10
    settings.DSPEX_EXECUTION_TIME_LIMIT = 12
    batch = ids(100)

    with django_assert_num_queries(0):
        publishing.publish_many(EXECUTIONS, batch, priority=7)

    assert not no_broker.called
    calls = run_many.call_args_list
    chunks = [c.kwargs["args"][0] for c in calls]
    assert [i for chunk in chunks for i in chunk] == [str(i) for i in batch]
    assert all(1 <= len(chunk) <= settings.DSPEX_IDS_PER_MESSAGE_MAX for chunk in chunks)
    assert max(len(chunk) for chunk in chunks) > 1
    assert len(chunks) >= publishing.MIN_MESSAGES_PER_BATCH  # still enough messages to keep a worker's threads busy
    for call, chunk in zip(calls, chunks, strict=True):
        assert call.kwargs["priority"] == 7
        assert call.kwargs["soft_time_limit"] == 10 * len(chunk)
        assert call.kwargs["time_limit"] == 12 * len(chunk)


@pytest.mark.django_db
@pytest.mark.parametrize(("count", "singles", "shared"), [(63, 63, []), (64, 0, [2] * 32), (65, 0, [2] * 32 + [1])])
def test_ids_start_sharing_messages_at_two_per_message(no_broker, run_many, settings, count, singles, shared):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 16
    batch = ids(count)
    publishing.publish_many(EXECUTIONS, batch)

    assert no_broker.call_count == singles
    chunks = [c.kwargs["args"][0] for c in run_many.call_args_list]
    assert [len(chunk) for chunk in chunks] == shared
    sent = [c.kwargs["args"][0] for c in no_broker.call_args_list] + [i for chunk in chunks for i in chunk]
    assert sent == [str(i) for i in batch]


@pytest.mark.django_db
def test_the_maximum_caps_every_message(no_broker, run_many, settings):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 4
    batch = ids(1000)
    publishing.publish_many(EXECUTIONS, batch)

    chunks = [c.kwargs["args"][0] for c in run_many.call_args_list]
    assert [len(chunk) for chunk in chunks] == [4] * 250
    assert [i for chunk in chunks for i in chunk] == [str(i) for i in batch]
    assert not no_broker.called


@pytest.mark.django_db
def test_a_maximum_of_one_sends_single_messages(no_broker, run_many, settings):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 1
    batch = ids(100)
    publishing.publish_many(EXECUTIONS, batch)

    assert not run_many.called
    assert [c.kwargs["args"] for c in no_broker.call_args_list] == [[str(i)] for i in batch]


@pytest.mark.django_db
def test_a_chunk_that_cannot_be_published_does_not_stop_the_others(no_broker, run_many, settings):
    settings.DSPEX_IDS_PER_MESSAGE_MAX = 16
    run_many.side_effect = [ConnectionError("broker down"), *[None] * 100]
    batch = ids(100)

    publishing.publish_many(EXECUTIONS, batch)  # logged; the sweeper re-sends what was lost

    chunks = [c.kwargs["args"][0] for c in run_many.call_args_list]
    assert [i for chunk in chunks for i in chunk] == [str(i) for i in batch]


# -- running a message of several ids -------------------------------------------------------


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def program(owner, local_lm) -> Program:
    lm = LanguageModelFactory(api_base=local_lm.url)
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    module_create(owner=owner, name="qa", type="predict", signature=signature, lm=lm)
    return program_activate(
        program=program_create(owner=owner, name="p", pipeline={"steps": [{"id": "a", "module": "qa"}]})
    )


def pending(program: Program, n: int) -> list[Execution]:
    return [
        Execution.objects.create(owner=program.owner, program=program, input={"question": f"What is {i} + 1?"},
                                 max_attempts=2)
        for i in range(n)
    ]


def pks(executions: list[Execution]) -> list[str]:
    return [str(e.pk) for e in executions]


def reads_of(queries, model) -> int:
    table = f"FROM {connection.ops.quote_name(model._meta.db_table)}"
    return sum(table in query["sql"] for query in queries)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_a_message_completes_each_row_once_and_a_redelivery_claims_nothing(program, local_lm):
    chunk = pending(program, 3)

    assert execution_jobs.executions_process(execution_ids=pks(chunk)) == ["completed"] * 3

    assert local_lm.stats()["chat_requests"] == 3
    for execution in chunk:
        row = Execution.objects.get(pk=execution.pk)
        assert row.status == ExecutionStatus.COMPLETED and row.attempt == 1
        assert [a["outcome"] for a in row.attempts] == ["completed"]
        assert set(row.output) == {"answer"}
        assert row.children.count() == 1

    assert execution_jobs.executions_process(execution_ids=pks(chunk)) == ["not-claimed"] * 3

    assert local_lm.stats()["chat_requests"] == 3
    for execution in chunk:
        row = Execution.objects.get(pk=execution.pk)
        assert row.attempt == 1 and len(row.attempts) == 1 and row.children.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_each_row_is_claimed_only_when_its_turn_comes(program, local_lm):
    first, second, third = chunk = pending(program, 3)
    seen_while_first_ran: dict[str, str] = {}
    perform = execution_jobs.execution_perform

    def spy(*, execution, **kwargs):  # cancels the second row while the first runs
        if execution.pk == first.pk:
            for waiting in (second, third):
                seen_while_first_ran[str(waiting.pk)] = Execution.objects.get(pk=waiting.pk).status
            execution_cancel(execution=Execution.objects.get(pk=second.pk))
        return perform(execution=execution, **kwargs)

    with mock.patch.object(execution_jobs, "execution_perform", spy):
        outcomes = execution_jobs.executions_process(execution_ids=pks(chunk))

    # The rows behind the running one were still pending: cancellable, and free for another worker.
    assert seen_while_first_ran == {str(second.pk): ExecutionStatus.PENDING, str(third.pk): ExecutionStatus.PENDING}
    assert outcomes == ["completed", "not-claimed", "completed"]
    assert local_lm.stats()["chat_requests"] == 2
    statuses = dict(Execution.objects.filter(pk__in=[e.pk for e in chunk]).values_list("id", "status"))
    assert statuses == {first.pk: ExecutionStatus.COMPLETED, second.pk: ExecutionStatus.CANCELLED,
                        third.pk: ExecutionStatus.COMPLETED}
    cancelled = Execution.objects.get(pk=second.pk)
    assert cancelled.attempt == 0 and cancelled.attempts == [] and not cancelled.children.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_a_row_cancelled_before_the_message_arrives_is_skipped(program, local_lm):
    chunk = pending(program, 3)
    execution_cancel(execution=chunk[1])

    assert execution_jobs.executions_process(execution_ids=pks(chunk)) == ["completed", "not-claimed", "completed"]
    assert local_lm.stats()["chat_requests"] == 2
    assert Execution.objects.get(pk=chunk[1].pk).status == ExecutionStatus.CANCELLED


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_the_rows_of_a_message_share_one_read_of_the_program_and_its_modules(program):
    execution_jobs.executions_process(execution_ids=pks(pending(program, 1)))  # caches warm, as in a running worker
    one, three = pending(program, 1), pending(program, 3)

    with CaptureQueriesContext(connection) as single:
        assert execution_jobs.executions_process(execution_ids=pks(one)) == ["completed"]
    with CaptureQueriesContext(connection) as shared:
        assert execution_jobs.executions_process(execution_ids=pks(three)) == ["completed"] * 3

    # Re-read once per message (so an edit applies from the next one), not once per row.
    assert reads_of(single.captured_queries, Module) >= 1
    assert reads_of(shared.captured_queries, Module) == reads_of(single.captured_queries, Module)
    assert reads_of(shared.captured_queries, Program) == reads_of(single.captured_queries, Program)


@pytest.mark.django_db
@pytest.mark.usefixtures("no_broker")
def test_an_edit_made_during_a_message_applies_from_the_next_message(program):
    chunk, later = pending(program, 3), pending(program, 1)
    signature = Module.objects.get(owner=program.owner, name="qa").signature
    perform = execution_jobs.execution_perform

    def spy(*, execution, **kwargs):  # redefines the signature once the first row has run
        result = perform(execution=execution, **kwargs)
        if execution.pk == chunk[0].pk:
            signature_update(signature=signature, spec="question: str -> answer: str, confidence: float")
        return result

    with mock.patch.object(execution_jobs, "execution_perform", spy):
        assert execution_jobs.executions_process(execution_ids=pks(chunk)) == ["completed"] * 3

    outputs = [Execution.objects.get(pk=e.pk).output for e in chunk]
    assert [set(output) for output in outputs] == [{"answer"}] * 3
    assert execution_jobs.executions_process(execution_ids=pks(later)) == ["completed"]
    assert set(Execution.objects.get(pk=later[0].pk).output) == {"answer", "confidence"}
