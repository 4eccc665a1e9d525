"""The cost budget (`budget: {"max_cost": ...}`): a priced model name against the local LM.

DSPy prices each call from LiteLLM's bundled price table when the model name is a known one,
so a LanguageModel `openai/gpt-4o-mini` pointed at the local LM has real, non-zero costs.
These use `transaction=True` for the run's monitor thread (see test_optimization.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from cognitive.engine.optimization import STOP_BUDGET, Budget, OptimizationMeter, OptimizationStopped
from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, OptimizationRun, OptimizationRunStatus, Program, ProgramStatus
from cognitive.services import optimization_jobs as optimization_services
from cognitive.services.optimization_jobs import optimization_execute
from cognitive.services.optimization_requests import optimization_start
from tests.factories import UserFactory
from tests.optimization_helpers import make_dataset, make_program

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db(transaction=True)

PRICED_MODEL = "openai/gpt-4o-mini"
SEARCH = {"max_bootstrapped_demos": 2, "max_labeled_demos": 2, "num_candidate_programs": 8}
# Unbudgeted, SEARCH spends about 150 optimizer calls at roughly $0.00003 each (~$0.0044 in all).
MAX_COST = 0.001


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.DSPEX_OPTIMIZATION_PROGRESS_SECONDS = 0.1
    settings.DSPEX_PROMOTION_MARGIN = 0.0
    # One thread: no call is in flight when the budget is found spent, so the stop is exact.
    settings.DSPEX_OPTIMIZATION_THREADS = 1


class RecordingMeter(OptimizationMeter):
    """The run's meter, kept for the test to read the optimizer's own cost and each call's cost."""

    made: list[RecordingMeter] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.call_costs: list[float] = []
        RecordingMeter.made.append(self)

    def add_lm_entry(self, call_id: str | None, entry: Any) -> None:
        self.call_costs.append(float(entry.get("cost") or 0.0))
        super().add_lm_entry(call_id, entry)


@pytest.fixture
def meters(monkeypatch):
    RecordingMeter.made = []
    monkeypatch.setattr(optimization_services, "OptimizationMeter", RecordingMeter)
    return RecordingMeter.made


def priced_program(local_lm) -> Program:
    owner = UserFactory()
    # make_program reuses the owner's `local-<pk>` LM row: this one, with a priced model name.
    LanguageModel.objects.create(name=f"local-{owner.pk}", model=PRICED_MODEL, api_base=local_lm.url)
    return make_program(owner, local_lm.url)


def run_search(program: Program, budget: dict[str, Any]) -> OptimizationRun:
    run = optimization_start(
        program=program, owner=program.owner, optimizer="bootstrap_random_search", dataset=make_dataset(program),
        metric="exact_match", config=SEARCH, budget=budget,
    )
    assert optimization_execute(run_id=run.pk, worker_id="test") == "succeeded"
    run.refresh_from_db()
    return run


def test_the_cost_budget_stops_the_optimizer_and_keeps_the_best_so_far(local_lm, meters):
    program = priced_program(local_lm)
    run = run_search(program, {"max_cost": MAX_COST})

    assert run.status == OptimizationRunStatus.SUCCEEDED and run.error is None
    assert run.budget == {"max_cost": MAX_COST, "max_lm_calls": settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS}
    progress = run.progress
    assert progress["phase"] == "done" and progress["budget_reached"] is True
    # Stopped well before the ~150 calls the search would make, after candidates were scored.
    assert 10 < progress["optimizer_lm_calls"] < 100
    assert 1 <= len(run.trials) < 11
    # The budget counts the optimizer's calls only; baseline and final are two whole passes over val (8 each).
    assert progress["lm_calls"] == progress["optimizer_lm_calls"] + 16
    assert local_lm.stats()["chat_requests"] == progress["lm_calls"]  # nothing ran after the stop

    [meter] = meters
    assert all(cost > 0 for cost in meter.call_costs), "the priced model name should make every call cost"
    assert meter.optimizer_cost >= MAX_COST
    # The call that crossed the budget was the last one the optimizer made.
    assert meter.optimizer_cost - max(meter.call_costs) < MAX_COST
    assert progress["cost"] == pytest.approx(sum(meter.call_costs), abs=1e-7)
    assert progress["cost"] > meter.optimizer_cost  # plus the baseline and final passes

    calls = progress["optimizer_lm_calls"]
    spent = f"{calls} optimizer LM calls costing ${progress['optimizer_cost']:.6f}"
    assert progress["optimizer_cost"] == pytest.approx(meter.optimizer_cost, abs=1e-7)
    assert any(f"budget reached after {spent}; kept the best candidate so far" in line for line in run.log), run.log
    version = run.result_version
    assert version is not None and version.state
    assert run.final_score is not None and version.scores["final"] == pytest.approx(run.final_score, abs=1e-4)
    # The best candidate so far (with demos) beats the zero-shot baseline, so it is promoted.
    assert run.final_score > run.baseline_score and run.promoted
    program.refresh_from_db()
    assert program.status == ProgramStatus.ACTIVE and program.active_version == version


def test_a_cost_budget_spent_before_any_candidate_is_scored_keeps_the_baseline(local_lm, meters):
    program = priced_program(local_lm)
    run = run_search(program, {"max_cost": 1e-9})  # the first priced call spends it

    assert run.status == OptimizationRunStatus.SUCCEEDED
    assert run.progress["budget_reached"] is True and run.progress["optimizer_lm_calls"] == 1
    assert run.trials == [{"n": 1, "score": pytest.approx(run.final_score, abs=1e-4), "phase": "final"}]
    assert any(
        "budget reached after 1 optimizer LM calls costing $" in line and "kept the baseline" in line
        for line in run.log
    ), run.log
    # The baseline itself: the same score, so kept for review rather than promoted.
    assert run.final_score == pytest.approx(run.baseline_score)
    assert run.result_version is not None and not run.promoted
    assert Program.objects.get(pk=program.pk).active_version is None


def test_the_cost_and_call_budgets_together_stop_at_whichever_comes_first(local_lm, meters):
    program = priced_program(local_lm)
    run = run_search(program, {"max_cost": 1.0, "max_lm_calls": 30})  # $1 is never reached here
    assert run.progress["budget_reached"] is True and run.progress["optimizer_lm_calls"] == 30
    assert meters[0].optimizer_cost < 1.0


def test_the_meter_counts_only_the_optimizers_cost_against_the_budget():
    meter = OptimizationMeter(Budget(max_cost=0.01))
    meter.set_phase("baseline")
    meter.on_lm_start("b1", None, {})
    meter.add_lm_entry("b1", {"cost": 0.05, "usage": {"total_tokens": 100}})  # the baseline is never cut short
    meter.set_phase("compiling", enforce_budget=True)
    for call in ("c1", "c2"):
        meter.on_lm_start(call, None, {})
        meter.add_lm_entry(call, {"cost": 0.006, "usage": {"total_tokens": 10}})
    with pytest.raises(OptimizationStopped) as stopped:
        meter.on_lm_start("c3", None, {})
    assert stopped.value.reason == STOP_BUDGET
    snapshot = meter.snapshot()
    assert snapshot["budget_reached"] is True and snapshot["optimizer_lm_calls"] == 2 and snapshot["lm_calls"] == 3
    assert snapshot["cost"] == pytest.approx(0.062) and meter.optimizer_cost == pytest.approx(0.012)
    assert snapshot["tokens"] == 120


@pytest.mark.parametrize("max_cost", [0, -1, "1", True, float("nan"), float("inf"), None])
def test_max_cost_must_be_a_positive_number(max_cost, local_lm):
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program)
    kwargs = dict(program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=dataset,
                  metric="exact_match")
    if max_cost is None:
        # None means "the default": every run has a budget.
        assert optimization_start(**kwargs, budget={"max_cost": None}).budget == {
            "max_cost": settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_COST,
            "max_lm_calls": settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS,
        }
        return
    with pytest.raises(InvalidInput, match=r"budget.max_cost must be a number > 0"):
        optimization_start(**kwargs, budget={"max_cost": max_cost})
