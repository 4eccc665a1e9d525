"""The job layer's conditional updates, one process. Real workers are in tests/integration."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from cognitive.errors import ExecutionFailed, InvalidInput, RateLimited, RetryableError
from cognitive.models import Execution, ExecutionStatus
from cognitive.services import execution_jobs
from cognitive.services.execution_jobs import EXECUTIONS
from cognitive.services.jobs import core, maintenance
from tests.factories import ProgramFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def execution():
    program = ProgramFactory()
    return Execution.objects.create(owner=program.owner, program=program, input={"question": "q"}, max_attempts=2)


def claim(execution, worker="w1"):
    return core.claim(EXECUTIONS, execution.pk, worker_id=worker)


def test_claim_is_exclusive(execution):
    first = claim(execution)
    assert first is not None and first.status == ExecutionStatus.RUNNING and first.attempt == 1
    assert first.lease_expires_at > timezone.now()
    assert claim(execution, "w2") is None


def test_claim_waits_for_backoff(execution):
    Execution.objects.filter(pk=execution.pk).update(run_after=timezone.now() + timedelta(minutes=1))
    assert claim(execution) is None


def test_completion_is_conditional_on_the_claim(execution):
    mine = claim(execution)
    # The reaper hands the row to another worker, which claims attempt 2.
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.PENDING)
    theirs = claim(execution, "w2")
    assert theirs.attempt == 2
    done = {"status": ExecutionStatus.COMPLETED, "trace": [], "metrics": {}, "duration_ms": 1}
    assert not core.complete(EXECUTIONS, mine, output={"answer": "zombie"}, **done)
    assert core.complete(EXECUTIONS, theirs, output={"answer": "ok"}, **done)
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.COMPLETED and row.output == {"answer": "ok"}
    assert [a["outcome"] for a in row.attempts] == ["completed"]


def test_rate_limit_snoozes_without_using_an_attempt(execution, no_broker):
    running = claim(execution)
    outcome = core.record_failure(EXECUTIONS, running, RateLimited("slow down", retry_after=7))
    row = Execution.objects.get(pk=execution.pk)
    assert outcome == "snoozed"
    assert row.status == ExecutionStatus.PENDING and row.attempt == 0
    assert row.run_after >= timezone.now() + timedelta(seconds=6)
    assert row.attempts[-1]["outcome"] == "snoozed"
    assert no_broker.call_args.kwargs["countdown"] >= 7


def test_transient_errors_retry_then_fail_when_attempts_run_out(execution):
    running = claim(execution)
    assert core.record_failure(EXECUTIONS, running, RetryableError("502")) == "retry"
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.PENDING and row.attempt == 1 and row.run_after is not None
    Execution.objects.filter(pk=execution.pk).update(run_after=None)
    running = claim(execution)
    assert running.attempt == 2
    assert core.record_failure(EXECUTIONS, running, RetryableError("503")) == "failed"
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.FAILED and row.error["attempts_exhausted"] is True
    assert [a["outcome"] for a in row.attempts] == ["retry", "failed"]


@pytest.mark.parametrize("exc", [InvalidInput("missing input field 'question'"), ExecutionFailed("step 'a' failed")])
def test_non_retryable_errors_fail_at_once(execution, exc):
    running = claim(execution)
    assert core.record_failure(EXECUTIONS, running, exc) == "failed"
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.FAILED and row.attempt == 1
    assert row.error["message"] == exc.message and row.error["type"] == type(exc).__name__


def test_backoff_grows_and_honours_retry_after(settings):
    settings.DSPEX_RETRY_BASE_SECONDS = 2
    settings.DSPEX_RETRY_MAX_SECONDS = 300
    assert 1 <= core.backoff_seconds(1) <= 2
    assert 8 <= core.backoff_seconds(4) <= 16
    assert core.backoff_seconds(1, retry_after=30) >= 30
    assert core.backoff_seconds(20) <= 300


def test_reaper_returns_expired_leases_and_fails_exhausted_ones(
    execution, no_broker, django_capture_on_commit_callbacks
):
    running = claim(execution)
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):  # the reaper publishes once its change is committed
        assert maintenance.reap(EXECUTIONS) == 1
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.PENDING and row.attempts[-1]["outcome"] == "worker-lost"
    assert no_broker.called
    running = claim(execution)
    assert running.attempt == 2
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert maintenance.reap(EXECUTIONS) == 1
    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.FAILED and row.error["type"] == "WorkerLost"


def test_live_leases_are_not_reaped(execution):
    claim(execution)
    assert maintenance.reap(EXECUTIONS) == 0


def test_sweeper_republishes_only_due_unpublished_rows(execution, no_broker):
    later = ProgramFactory()
    Execution.objects.create(
        owner=later.owner, program=later, input={}, run_after=timezone.now() + timedelta(minutes=5)
    )
    assert maintenance.sweep(EXECUTIONS) == 1
    assert no_broker.call_args.kwargs["args"] == [str(execution.pk)]
    # Just published: not again until DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS have passed.
    assert maintenance.sweep(EXECUTIONS) == 0


def test_heartbeat_extends_the_lease_until_the_claim_is_gone(execution):
    running = claim(execution)
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now())
    assert core.renew(EXECUTIONS, running)
    assert Execution.objects.get(pk=execution.pk).lease_expires_at > timezone.now()
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.CANCELLED)
    assert not core.renew(EXECUTIONS, running)


def test_a_soft_time_limit_retries_the_run_and_leaves_the_rest_of_the_message_pending(execution):
    second = Execution.objects.create(owner=execution.owner, program=execution.program, input={"question": "q"})
    with (
        mock.patch.object(execution_jobs, "execution_perform", side_effect=SoftTimeLimitExceeded()),
        pytest.raises(SoftTimeLimitExceeded),
    ):
        execution_jobs.executions_process(execution_ids=[execution.pk, second.pk])

    first = Execution.objects.get(pk=execution.pk)
    assert first.status == ExecutionStatus.PENDING and first.run_after is not None
    assert [(a["outcome"], a["error"]["type"]) for a in first.attempts] == [("retry", "RetryableError")]
    untouched = Execution.objects.get(pk=second.pk)
    assert (untouched.status, untouched.attempt, untouched.attempts) == (ExecutionStatus.PENDING, 0, [])
