"""Lists that stay small (issue 11): a capped page size, and list items without their large fields.

Before: `GET /api/executions/?limit=500` answered 500 items with their whole input, output and
trace; with 2.4 MB inputs that was a 150 MB response held in the web worker's memory.
"""

from __future__ import annotations

import json

import pytest

from cognitive.models import ExecutionStatus, OptimizationRun
from tests.factories import ExecutionFactory, ProgramFactory, ProgramVersionFactory

pytestmark = pytest.mark.django_db

BIG = "x" * 100_000


def test_the_page_size_is_capped_by_a_setting(api, user, settings):
    settings.DSPEX_PAGE_SIZE_MAX = 5
    for _ in range(7):
        ExecutionFactory(owner=user)

    page = api.get("/api/executions/", {"limit": 500}).json()

    assert page["count"] == 7 and len(page["results"]) == 5


def test_execution_list_items_leave_out_large_fields_and_the_detail_has_them(api, user):
    execution = ExecutionFactory(
        owner=user, status=ExecutionStatus.COMPLETED, input={"question": BIG}, output={"answer": BIG},
        trace=[{"type": "lm_call", "messages": BIG}], context={"temperature": 0.1},
    )

    listed = api.get("/api/executions/")
    item = listed.json()["results"][0]
    detail = api.get(f"/api/executions/{execution.pk}/").json()

    assert item["id"] == str(execution.pk) and item["status"] == "completed"
    assert not {"input", "output", "trace", "context", "attempts", "children"} & set(item)
    assert len(listed.content) < 2_000
    assert detail["input"] == {"question": BIG} and detail["output"] == {"answer": BIG}
    assert detail["trace"][0]["messages"] == BIG


def test_a_page_of_big_executions_stays_small(api, user):
    for _ in range(50):
        ExecutionFactory(owner=user, input={"question": BIG}, output={"answer": BIG})

    response = api.get("/api/executions/", {"limit": 50})

    assert len(response.json()["results"]) == 50
    assert len(response.content) < 50 * 1_000  # was > 50 * 200 KB with the inputs and outputs inline


def test_program_and_version_lists_leave_out_pipelines_and_state(api, user):
    program = ProgramFactory(owner=user, pipeline={"steps": [{"id": "a", "module": "m", "inputs": {"q": BIG}}]},
                             variables={"v": BIG})
    version = ProgramVersionFactory(program=program, state={"a": {"demos": [{"q": BIG}]}})

    programs = api.get("/api/programs/").json()["results"]
    versions = api.get("/api/program-versions/").json()["results"]
    nested = api.get(f"/api/programs/{program.pk}/versions/").json()

    assert "pipeline" not in programs[0] and "variables" not in programs[0]
    assert "state" not in versions[0] and nested["count"] == 1 and "state" not in nested["results"][0]
    assert api.get(f"/api/programs/{program.pk}/").json()["pipeline"] == program.pipeline
    assert api.get(f"/api/program-versions/{version.pk}/").json()["state"] == version.state


def test_optimization_run_list_items_leave_out_configs_trials_and_log(api, user):
    program = ProgramFactory(owner=user)
    run = OptimizationRun.objects.create(
        owner=user, program=program, optimizer_type="labeled_few_shot", optimizer_config={"k": 2, "x": BIG},
        metric="exact_match", trials=[{"n": i, "score": 0.5, "phase": BIG} for i in range(3)], log=[BIG],
    )

    item = api.get("/api/optimization-runs/").json()["results"][0]
    detail = api.get(f"/api/optimization-runs/{run.pk}/").json()

    assert item["id"] == str(run.pk) and "budget" in item and "progress" in item
    assert not {"optimizer_config", "metric_config", "trials", "log", "attempts"} & set(item)
    assert len(json.dumps(item)) < 2_000
    assert detail["log"] == [BIG] and len(detail["trials"]) == 3
