"""Optimization runs through the services, in-process against the local LM (no Celery).

These use `transaction=True`: the run's monitor thread writes progress on its own connection,
which must see the committed run row.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from cognitive.errors import Conflict, InvalidInput, RateLimited, RetryableError
from cognitive.models import (
    Dataset,
    ExecutionStatus,
    OptimizationRun,
    OptimizationRunStatus,
    Program,
    ProgramStatus,
    ProgramVersion,
)
from cognitive.services.datasets import execution_feedback
from cognitive.services.jobs import core, maintenance
from cognitive.services.optimization_jobs import OPTIMIZATION_RUNS, optimization_execute
from cognitive.services.optimization_requests import optimization_cancel, optimization_start
from cognitive.services.optimization_schedules import optimization_schedule_set, optimization_scheduled
from cognitive.services.programs import program_archive
from local_lm.responder import oracle_answer
from tests.factories import ExecutionFactory, ProgramFactory, UserFactory
from tests.optimization_helpers import TINY_CONFIGS, make_dataset, make_program, question

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db(transaction=True)

SUCCEEDED = OptimizationRunStatus.SUCCEEDED


@pytest.fixture(autouse=True)
def _quick_progress(settings):
    settings.DSPEX_OPTIMIZATION_PROGRESS_SECONDS = 0.1
    settings.DSPEX_PROMOTION_MARGIN = 0.0


def start(program, dataset, kind="labeled_few_shot", **kwargs):
    kwargs.setdefault("config", TINY_CONFIGS.get(kind, {}))
    return optimization_start(
        program=program, owner=program.owner, optimizer=kind, dataset=dataset, metric="exact_match", **kwargs
    )


def run_now(run) -> OptimizationRun:
    optimization_execute(run_id=run.pk, worker_id="test")
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("kind", list(TINY_CONFIGS))
def test_every_optimizer_type_writes_a_scored_version_and_progress(kind, local_lm):
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program)
    run = start(program, dataset, kind)
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.OPTIMIZING

    run = run_now(run)

    assert run.status == SUCCEEDED, (run.error, run.log)
    assert run.attempt == 1 and [a["outcome"] for a in run.attempts] == ["succeeded"]
    version = run.result_version
    assert version is not None and version.source == "optimization"
    assert version.scores["baseline"] == pytest.approx(run.baseline_score, abs=1e-4)
    assert version.scores["final"] == pytest.approx(run.final_score, abs=1e-4)
    assert version.scores["metric"] == "exact_match" and version.scores["split"] == "val"
    assert set(version.state) == {"qa"}
    assert run.progress["phase"] == "done"
    assert run.progress["lm_calls"] > 0 and run.progress["tokens"] > 0
    assert run.progress["trials_done"] == len(run.trials) >= 1
    assert all(0.0 <= trial["score"] <= 1.0 for trial in run.trials)
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    # Baseline + final: one LM call per val example each, on top of what the optimizer used.
    assert run.progress["lm_calls"] == run.progress["optimizer_lm_calls"] + 2 * 8


def test_demos_make_a_measurably_better_version_which_is_promoted(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program, train=12, val=16)

    run = run_now(start(program, dataset, "labeled_few_shot", config={"k": 4}))

    # The local LM answers ~30% right with no demos and all right with 4: a real measurement on val.
    assert run.baseline_score < 0.6
    assert run.final_score == 1.0
    assert run.final_score - run.baseline_score >= 0.4
    assert run.promoted
    program.refresh_from_db()
    assert program.active_version_id == run.result_version_id
    assert len(run.result_version.state["qa"]["demos"]) == 4
    assert "promoted v1" in run.log[-1]


def test_a_version_that_is_not_better_is_kept_but_not_promoted(local_lm, settings):
    settings.DSPEX_PROMOTION_MARGIN = 0.99
    program = make_program(UserFactory(), local_lm.url)
    run = run_now(start(program, make_dataset(program), "labeled_few_shot", config={"k": 4}))
    assert run.status == SUCCEEDED and not run.promoted
    assert Program.objects.get(pk=program.pk).active_version is None
    assert "not promoted" in run.log[-1]


def test_only_active_programs_can_be_optimized(local_lm):
    owner = UserFactory()
    draft = ProgramFactory(owner=owner)
    dataset = make_dataset(make_program(owner, local_lm.url))
    with pytest.raises(Conflict, match="only an active program can be optimized; this one is draft"):
        start(draft, dataset)
    archived = make_program(owner, local_lm.url, name="old")
    archived_data = make_dataset(archived)
    program_archive(program=archived)
    archived.refresh_from_db()
    with pytest.raises(Conflict, match="this one is archived"):
        start(archived, archived_data)


def test_one_optimization_per_program_at_a_time(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program)
    stale = Program.objects.get(pk=program.pk)
    first = start(program, dataset)
    with pytest.raises(Conflict, match="already being optimized") as info:
        start(Program.objects.get(pk=program.pk), dataset)
    assert info.value.extra["optimization_run"] == str(first.pk)
    # Even a stale copy of the program (still saying "active") is refused: the row is locked and re-read.
    with pytest.raises(Conflict, match="already being optimized"):
        start(stale, dataset)
    assert OptimizationRun.objects.filter(program=program).count() == 1
    assert first.status == OptimizationRunStatus.QUEUED


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="real concurrent transactions need PostgreSQL")
def test_concurrent_starts_let_exactly_one_through(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program)
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def attempt() -> None:
        try:
            barrier.wait()
            start(Program.objects.get(pk=program.pk), Dataset.objects.get(pk=dataset.pk))
            outcomes.append("started")
        except Conflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 5 + ["started"]
    assert OptimizationRun.objects.filter(program=program).count() == 1


@pytest.mark.parametrize(
    "kind, config, message",
    [
        ("bootstrap_few_shot", {"max_rounds": 1, "bogus": 2}, "does not accept 'bogus'"),
        ("beacon", {}, "'beacon' is not a DSPy optimizer"),
        ("copro", {"breadth": "wide"}, "'breadth' must be int"),
    ],
)
def test_bad_optimizer_configs_are_400s_naming_the_argument(kind, config, message, local_lm):
    program = make_program(UserFactory(), local_lm.url)
    with pytest.raises(InvalidInput, match=message):
        start(program, make_dataset(program), kind, config=config)
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


def test_dataset_and_metric_and_budget_are_checked(local_lm):
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    other = make_program(owner, local_lm.url, name="other")
    dataset = make_dataset(program)
    with pytest.raises(InvalidInput, match="belongs to another program"):
        start(other, dataset)
    with pytest.raises(InvalidInput, match="unknown metric"):
        optimization_start(program=program, owner=owner, optimizer="labeled_few_shot", dataset=dataset, metric="bleu")
    with pytest.raises(InvalidInput, match="max_lm_calls must be an integer"):
        start(program, dataset, budget={"max_lm_calls": 0})
    empty = Dataset.objects.create(owner=owner, program=other, name="empty")
    with pytest.raises(InvalidInput, match="has no train examples"):
        start(other, empty)


def test_without_a_val_split_some_train_examples_are_held_out(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    run = run_now(start(program, make_dataset(program, train=10, val=0), "labeled_few_shot", config={"k": 2}))
    assert run.status == SUCCEEDED
    assert any("held out 2 of 10 train examples as val" in line for line in run.log)


def test_cancelling_a_queued_run_means_it_never_runs(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program))
    optimization_cancel(run=run)
    assert run.status == OptimizationRunStatus.CANCELLED
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    before = local_lm.stats()["chat_requests"]
    assert optimization_execute(run_id=run.pk, worker_id="late") == "not-claimed"
    assert local_lm.stats()["chat_requests"] == before
    with pytest.raises(Conflict, match="cannot cancel an optimization run that is cancelled"):
        optimization_cancel(run=run)


# Three threads write here (worker, its monitor, the canceller); SQLite's shared in-memory test database
# answers such overlaps with "table is locked" instead of waiting, so this one needs PostgreSQL.
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="concurrent writers need PostgreSQL")
def test_cancelling_a_running_run_stops_it_and_writes_no_version(local_lm):
    local_lm.configure(latency_ms=20)
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program), "bootstrap_random_search", config={
        "max_bootstrapped_demos": 2, "max_labeled_demos": 2, "num_candidate_programs": 12,
    })
    outcome: list[str] = []
    worker = threading.Thread(
        target=lambda: (outcome.append(optimization_execute(run_id=run.pk, worker_id="w")), connection.close())
    )
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        progress = OptimizationRun.objects.get(pk=run.pk).progress
        if progress.get("phase") == "compiling" and progress.get("optimizer_lm_calls", 0) > 5:
            break
        time.sleep(0.05)
    optimization_cancel(run=OptimizationRun.objects.get(pk=run.pk))
    worker.join(30)
    assert outcome == ["cancelled"]
    calls_after_stop = local_lm.stats()["chat_requests"]
    time.sleep(0.3)
    assert local_lm.stats()["chat_requests"] == calls_after_stop
    run.refresh_from_db()
    assert run.status == OptimizationRunStatus.CANCELLED and run.result_version is None
    assert not ProgramVersion.objects.filter(program=program).exists()
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


def test_budget_stops_the_optimizer_cleanly_and_keeps_the_best_so_far(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    config = {"max_bootstrapped_demos": 2, "max_labeled_demos": 2, "num_candidate_programs": 8}
    run = run_now(start(program, make_dataset(program), "bootstrap_random_search", config=config,
                        budget={"max_lm_calls": 40}))
    assert run.status == SUCCEEDED, run.error
    assert run.progress["budget_reached"] is True
    assert run.progress["optimizer_lm_calls"] == 40
    # 12 train examples per candidate: the first candidates were scored before the budget ran out.
    assert 1 <= len(run.trials) < 11
    assert any(
        "budget reached after 40 optimizer LM calls" in line and "kept the best candidate so far" in line
        for line in run.log
    )
    assert run.result_version is not None and run.final_score is not None


def test_the_reaper_requeues_an_expired_lease_then_fails_when_attempts_are_used_up(local_lm, broker_messages):
    published = broker_messages["workers.optimization.run"]
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program))
    run.max_attempts = 2
    OptimizationRun.objects.filter(pk=run.pk).update(max_attempts=2)
    for expected in (OptimizationRunStatus.QUEUED, OptimizationRunStatus.FAILED):
        assert core.claim(OPTIMIZATION_RUNS, run.pk, worker_id="doomed") is not None
        OptimizationRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert maintenance.reap(OPTIMIZATION_RUNS) == 1
        run.refresh_from_db()
        assert run.status == expected
    assert [a["outcome"] for a in run.attempts] == ["worker-lost", "worker-lost"]
    assert run.error["attempts_exhausted"] is True
    assert [c.kwargs["args"] for c in published.call_args_list] == [[str(run.pk)]] * 2  # on start, then by the reaper
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


def test_a_zombie_worker_cannot_complete_a_reaped_run(local_lm, broker_messages):
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program))
    zombie = core.claim(OPTIMIZATION_RUNS, run.pk, worker_id="zombie")
    OptimizationRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    maintenance.reap(OPTIMIZATION_RUNS)
    rescued = run_now(run)  # attempt 2 claims and finishes
    from cognitive.services.optimization_jobs import _complete

    assert _complete(zombie, baseline=0, final=1, state={}, notes=[], progress={}, trials=[]) == "lost-claim"
    assert rescued.status == SUCCEEDED and rescued.attempt == 2
    assert ProgramVersion.objects.filter(program=program).count() == 1


def test_feedback_makes_the_scheduled_run_start_and_promote(local_lm, broker_messages):
    owner = UserFactory()
    program = make_program(owner, local_lm.url)
    dataset = make_dataset(program, train=2, val=20)
    schedule = optimization_schedule_set(
        program=program, owner=owner, cron="0 3 * * *", optimizer="labeled_few_shot", dataset=dataset,
        metric="exact_match", config={"k": 8},
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "workers.optimization.scheduled" and task.crontab.hour == "3"

    # First tick: the imported examples are new, so it runs (2 demos beat none) and promotes.
    assert optimization_scheduled(schedule_id=schedule.pk) == "started"
    first = run_now(OptimizationRun.objects.get(schedule=schedule))
    assert first.promoted, first.log

    # Nothing changed since: the next tick does not start a run.
    assert optimization_scheduled(schedule_id=schedule.pk) == "unchanged"
    assert OptimizationRun.objects.filter(schedule=schedule).count() == 1

    # A user corrects a production answer: it becomes a train example, so the next tick runs again.
    q = question(100)
    execution = ExecutionFactory(
        owner=owner, program=program, input={"question": q}, output={"answer": "wrong"},
        status=ExecutionStatus.COMPLETED,
    )
    execution_feedback(execution=execution, owner=owner, corrected_output={"answer": oracle_answer({"question": q})})
    assert optimization_scheduled(schedule_id=schedule.pk) == "started"
    second = run_now(OptimizationRun.objects.filter(schedule=schedule).latest("created_at"))
    assert second.status == SUCCEEDED
    # 3 demos beat the active version's 2 on val, so the rule promotes it.
    assert second.baseline_score == pytest.approx(first.final_score)
    assert second.final_score > second.baseline_score and second.promoted
    assert Program.objects.get(pk=program.pk).active_version_id == second.result_version_id


def test_schedule_cron_is_validated(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    with pytest.raises(InvalidInput, match="cron"):
        optimization_schedule_set(
            program=program, owner=program.owner, cron="every day", optimizer="labeled_few_shot",
            dataset=make_dataset(program), metric="exact_match",
        )


def _compile_failing_once(monkeypatch, exc):
    from cognitive.engine.optimization import OptimizationSession

    real_compile = OptimizationSession.compile
    calls = {"n": 0}

    def compile_once(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise exc
        return real_compile(self)

    monkeypatch.setattr(OptimizationSession, "compile", compile_once)


@pytest.mark.parametrize(
    ("exc", "outcome", "attempt_after_failure"),
    [(RetryableError("LM answered 502"), "retry", 1), (RateLimited("LM answered 429", retry_after=3), "snoozed", 0)],
)
def test_transient_failures_retry_with_backoff_and_rate_limits_use_no_attempt(
    local_lm, monkeypatch, broker_messages, exc, outcome, attempt_after_failure
):
    queue = broker_messages["workers.optimization.run"]
    _compile_failing_once(monkeypatch, exc)
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program))
    assert optimization_execute(run_id=run.pk) == outcome
    run.refresh_from_db()
    assert run.status == OptimizationRunStatus.QUEUED and run.attempt == attempt_after_failure
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.OPTIMIZING
    delays = [c.kwargs["countdown"] for c in queue.call_args_list]
    assert delays and delays[-1] is not None and (outcome == "retry" or delays[-1] >= 3)
    OptimizationRun.objects.filter(pk=run.pk).update(run_after=None)  # the backoff has passed
    assert optimization_execute(run_id=run.pk) == "succeeded"
    run.refresh_from_db()
    assert [a["outcome"] for a in run.attempts] == [outcome, "succeeded"]
    assert run.status == SUCCEEDED and Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


def test_a_transient_failure_on_the_last_attempt_fails_the_run(local_lm, monkeypatch, broker_messages):
    _compile_failing_once(monkeypatch, RetryableError("LM answered 503"))
    program = make_program(UserFactory(), local_lm.url)
    run = start(program, make_dataset(program))
    OptimizationRun.objects.filter(pk=run.pk).update(max_attempts=1)
    assert optimization_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == OptimizationRunStatus.FAILED and "503" in run.error["message"]
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
