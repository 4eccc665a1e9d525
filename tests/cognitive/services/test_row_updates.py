"""Plain-SQL conditional updates and inserts behave like the ORM on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from cognitive.models import Execution, ExecutionStatus
from cognitive.services.row_updates import Add, DueBy, insert_row, update_returning, update_where
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db

PENDING, RUNNING = ExecutionStatus.PENDING, ExecutionStatus.RUNNING
RETURNING = ("id", "program", "input", "attempts", "status", "attempt", "started_at", "lease_expires_at")


@pytest.fixture
def program():
    return ProgramFactory()


def pending(program, **fields) -> Execution:
    defaults = {"owner": program.owner, "program": program, "input": {"question": "q", "n": [1, 2.5, None]}}
    return Execution.objects.create(**{**defaults, **fields})


def snapshot(execution: Execution) -> dict:
    row = Execution.objects.get(pk=execution.pk)
    return {f.attname: getattr(row, f.attname) for f in Execution._meta.concrete_fields}


def test_update_returning_changes_nothing_when_nothing_matches(program):
    execution = pending(program, status=RUNNING)
    before = snapshot(execution)

    found = update_returning(
        Execution,
        where={"id": execution.pk, "status": PENDING},
        values={"status": RUNNING, "attempt": Add(1), "worker_id": "w"},
        returning=RETURNING,
    )

    assert found is None
    assert snapshot(execution) == before


def test_update_returning_loads_the_returned_fields_like_the_orm(program):
    history = [{"attempt": 1, "outcome": "retry", "error": {"type": "X", "extra": {"k": [1, "two"]}}}]
    execution = pending(program, attempts=history, attempt=1, trace=[{"step": "a"}], output={"answer": "kept"})
    started = timezone.now().replace(microsecond=123456)
    lease = started + timedelta(seconds=90)

    row = update_returning(
        Execution,
        where={"id": execution.pk, "status": PENDING},
        values={"status": RUNNING, "attempt": Add(1), "started_at": started, "lease_expires_at": lease,
                "worker_id": "host:1:2"},
        returning=RETURNING,
    )

    assert isinstance(row, Execution)
    assert isinstance(row.pk, uuid.UUID) and row.pk == execution.pk
    assert isinstance(row.program_id, uuid.UUID) and row.program_id == program.pk
    assert row.input == {"question": "q", "n": [1, 2.5, None]}
    assert row.attempts == history
    assert row.status == RUNNING
    assert row.attempt == 2  # Add(1) applied to the stored 1
    assert timezone.is_aware(row.started_at) and row.started_at == started
    assert timezone.is_aware(row.lease_expires_at) and row.lease_expires_at == lease
    assert not row._state.adding

    deferred = row.get_deferred_fields()
    assert {"output", "trace", "worker_id", "created_at"} <= deferred
    assert not {"id", "program_id", "input", "attempts", "status", "attempt"} & deferred
    assert row.output == {"answer": "kept"}  # loads on access
    assert row.trace == [{"step": "a"}]
    assert row.worker_id == "host:1:2"

    stored = Execution.objects.get(pk=execution.pk)
    assert (stored.status, stored.attempt, stored.started_at, stored.lease_expires_at) == (
        RUNNING, 2, started, lease)
    assert stored.input == row.input and stored.attempts == row.attempts


def test_update_returning_datetimes_in_another_zone_compare_equal(program):
    execution = pending(program)
    moment = timezone.now().astimezone(timezone.get_fixed_timezone(-300))

    row = update_returning(
        Execution, where={"id": execution.pk}, values={"started_at": moment}, returning=("id", "started_at")
    )

    assert row.started_at == moment
    assert Execution.objects.get(pk=execution.pk).started_at == moment


def test_due_by_matches_null_and_past_but_not_future(program):
    now = timezone.now()
    never = pending(program, run_after=None)
    past = pending(program, run_after=now - timedelta(seconds=5))
    exactly = pending(program, run_after=now)
    future = pending(program, run_after=now + timedelta(seconds=5))

    def claim(execution):
        return update_returning(
            Execution,
            where={"id": execution.pk, "status": PENDING, "run_after": DueBy(now)},
            values={"status": RUNNING},
            returning=("id", "status"),
        )

    assert claim(never) is not None
    assert claim(past) is not None
    assert claim(exactly) is not None
    assert claim(future) is None
    assert Execution.objects.get(pk=future.pk).status == PENDING
    due = {"program": program.pk, "run_after": DueBy(now)}
    assert update_where(Execution, where=due, values={"worker_id": "x"}) == 3
    assert Execution.objects.get(pk=future.pk).worker_id == ""


def test_update_where_counts_the_rows_it_changed_and_honours_every_condition(program):
    other = ProgramFactory(owner=program.owner)
    target = pending(program, status=RUNNING, attempt=2)
    wrong_attempt = pending(program, status=RUNNING, attempt=1)
    wrong_status = pending(program, status=PENDING, attempt=2)
    wrong_program = pending(other, status=RUNNING, attempt=2)
    everyone = [target, wrong_attempt, wrong_status, wrong_program]

    changed = update_where(
        Execution,
        where={"program": program.pk, "status": RUNNING, "attempt": 2},
        values={"status": ExecutionStatus.COMPLETED, "output": {"answer": 4}, "attempt": Add(-1),
                "lease_expires_at": None},
    )

    assert changed == 1
    rows = {e.pk: Execution.objects.get(pk=e.pk) for e in everyone}
    assert (rows[target.pk].status, rows[target.pk].output, rows[target.pk].attempt) == (
        ExecutionStatus.COMPLETED, {"answer": 4}, 1)
    for untouched in (wrong_attempt, wrong_status, wrong_program):
        row = rows[untouched.pk]
        assert (row.status, row.output, row.attempt) == (untouched.status, None, untouched.attempt)

    assert update_where(Execution, where={"id": target.pk, "status": RUNNING}, values={"worker_id": "late"}) == 0
    assert Execution.objects.get(pk=target.pk).worker_id == ""
    assert update_where(Execution, where={"program": program.pk}, values={"priority": 1}) == 3
    assert Execution.objects.get(pk=wrong_program.pk).priority == 5


def test_insert_row_writes_a_new_row_with_timestamps_and_json(program):
    parent = pending(program)
    started = timezone.now() - timedelta(seconds=3)
    child = Execution(
        owner_id=program.owner_id,
        parent=parent,
        program_id=program.pk,
        step_id="a",
        input={"question": "q", "nested": {"list": [1, "x", None, True]}},
        output={"answer": "A", "score": 0.5},
        trace=[{"type": "lm_call", "usage": {"total_tokens": 12}}],
        metrics={"kind": "module", "recovered_by": None},
        status=ExecutionStatus.COMPLETED,
        error=None,
        duration_ms=7,
        attempt=1,
        max_attempts=1,
        started_at=started,
        finished_at=started + timedelta(milliseconds=7),
    )
    assert child._state.adding
    before = timezone.now()

    insert_row(child)

    assert child._state.adding is False
    assert child.created_at is not None and child.updated_at is not None
    stored = Execution.objects.get(pk=child.pk)
    assert before <= stored.created_at <= timezone.now()
    assert before <= stored.updated_at <= timezone.now()
    assert stored.created_at == child.created_at and stored.updated_at == child.updated_at
    assert stored.parent_id == parent.pk and stored.program_id == program.pk and stored.owner_id == program.owner_id
    assert stored.input == {"question": "q", "nested": {"list": [1, "x", None, True]}}
    assert stored.output == {"answer": "A", "score": 0.5}
    assert stored.trace == [{"type": "lm_call", "usage": {"total_tokens": 12}}]
    assert stored.metrics == {"kind": "module", "recovered_by": None}
    assert stored.error is None
    assert stored.context == {} and stored.attempts == []  # field defaults
    assert (stored.status, stored.duration_ms, stored.attempt, stored.step_id) == (
        ExecutionStatus.COMPLETED, 7, 1, "a")
    assert stored.started_at == started
    assert list(parent.children.all()) == [stored]
    # Saved as far as Django is concerned: saving again is an UPDATE, not a second INSERT.
    child.step_id = "b"
    child.save(update_fields=["step_id"])
    assert Execution.objects.get(pk=child.pk).step_id == "b"
