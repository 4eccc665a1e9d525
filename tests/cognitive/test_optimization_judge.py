"""An optimization scored by `llm_judge`: the service hands the engine the judge's LM by name."""

from __future__ import annotations

import pytest

from cognitive.engine.language_models import clear_lm_cache
from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, OptimizationRunStatus
from cognitive.services.optimization_jobs import optimization_execute
from cognitive.services.optimization_requests import optimization_start
from local_lm.server import LocalLMServer
from tests.factories import UserFactory
from tests.optimization_helpers import TINY_CONFIGS, make_dataset, make_program

pytest_plugins = ["tests.fixtures_local_lm"]
pytestmark = pytest.mark.django_db(transaction=True)  # the run's monitor thread writes on its own connection


@pytest.fixture
def judge_server():
    server = LocalLMServer(port=0).start()
    try:
        yield server
    finally:
        server.stop()


def test_llm_judge_scores_an_optimization_with_the_named_lm(local_lm, judge_server, settings):
    settings.DSPEX_OPTIMIZATION_PROGRESS_SECONDS = 0.1
    clear_lm_cache()
    LanguageModel.objects.create(name="judge", model="openai/local", api_base=judge_server.url)
    program = make_program(UserFactory(), local_lm.url)
    dataset = make_dataset(program, train=4, val=3)

    run = optimization_start(
        program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=dataset,
        metric="llm_judge", metric_config={"lm": "judge"}, config=TINY_CONFIGS["labeled_few_shot"],
    )
    optimization_execute(run_id=run.pk, worker_id="test")
    run.refresh_from_db()

    assert run.status == OptimizationRunStatus.SUCCEEDED, (run.error, run.log)
    assert 0.0 <= run.baseline_score <= 1.0 and 0.0 <= run.final_score <= 1.0
    # One judgement per val example for the baseline and again for the final program.
    assert judge_server.stats()["chat_requests"] >= 2 * 3


def test_llm_judge_with_an_unknown_lm_is_refused_when_the_run_is_requested(local_lm):
    program = make_program(UserFactory(), local_lm.url)
    with pytest.raises(InvalidInput, match="no language model named 'nobody'"):
        optimization_start(
            program=program, owner=program.owner, optimizer="labeled_few_shot", dataset=make_dataset(program),
            metric="llm_judge", metric_config={"lm": "nobody"},
        )
