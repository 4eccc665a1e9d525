"""Bounded work (issue 11): every option that multiplies an LM call's cost is bounded by a setting.

Each test fails on the code before the issue: `n=1000000`, `max_rounds=1e9` and
`max_bootstrapped_demos=1e6` were accepted, and optimization runs without a budget had none.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from cognitive.models import Module
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory
from tests.optimization_helpers import make_dataset, make_program

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def signature(user):
    return signature_create(owner=user, name="qa", spec="question: str -> answer: str")


def create_module(api, signature, **fields):
    body = {"name": "qa", "type": "predict", "signature": str(signature.pk), **fields}
    return api.post("/api/modules/", body, format="json")


@pytest.mark.parametrize(
    ("type_", "config", "path"),
    [
        ("predict", {"n": 1_000_000}, "config.n"),
        ("predict", {"max_tokens": 10**9}, "config.max_tokens"),
        ("react", {"tools": ["calculator"], "max_iters": 10**6}, "config.max_iters"),
        ("multi_chain_comparison", {"M": 1000}, "config.M"),
    ],
)
def test_module_create_rejects_options_above_their_bound(api, signature, type_, config, path):
    response = create_module(api, signature, type=type_, config=config)

    assert response.status_code == 400, response.content
    assert response.json()["extra"]["path"] == path
    assert "must be an integer from" in response.json()["message"]


def test_the_n_bound_is_a_setting(api, signature, settings):
    settings.DSPEX_MODULE_MAX_N = 3
    assert create_module(api, signature, config={"n": 3}).status_code == 201
    too_many = api.patch(f"/api/modules/{Module.objects.get().pk}/", {"config": {"n": 4}}, format="json")
    assert too_many.status_code == 400
    assert "from 1 to 3" in too_many.json()["message"]


def test_module_update_is_bounded_too(api, signature):
    module = create_module(api, signature).json()
    response = api.patch(f"/api/modules/{module['id']}/", {"config": {"n": 1_000_000}}, format="json")
    assert response.status_code == 400
    assert Module.objects.get(pk=module["id"]).config == {}


def test_an_lms_output_limit_bounds_max_tokens_at_create_update_and_per_call(api, signature, user, local_lm):
    small = LanguageModelFactory(name="small", api_base=local_lm.url, max_output_tokens=100)
    LanguageModelFactory(name="big", api_base=local_lm.url)

    over = create_module(api, signature, lm="small", config={"max_tokens": 101})
    assert over.status_code == 400 and "from 1 to 100" in over.json()["message"]
    module = create_module(api, signature, lm="small", config={"max_tokens": 100}).json()
    # Moving the module to an LM without a limit of its own: the platform's bound applies.
    assert api.patch(f"/api/modules/{module['id']}/", {"lm": "big", "config": {"max_tokens": 4000}},
                     format="json").status_code == 200
    # ...and back to the small one with that config is refused.
    assert api.patch(f"/api/modules/{module['id']}/", {"lm": "small"}, format="json").status_code == 400

    url = f"/api/modules/{module['id']}/execute/"
    per_call = api.post(url, {"input": {"question": "q"}, "context": {"lm": small.name, "max_tokens": 500}},
                        format="json")
    assert (per_call.status_code, per_call.json()["extra"]["field"]) == (400, "context.max_tokens")
    assert "from 1 to 100" in per_call.json()["message"]


@pytest.mark.parametrize(("option", "value"), [("n", 1_000_000), ("max_tokens", 10**9)])
def test_a_per_call_override_is_bounded(api, signature, local_lm, option, value):
    LanguageModelFactory(name="local", api_base=local_lm.url)
    module = create_module(api, signature, lm="local").json()

    response = api.post(f"/api/modules/{module['id']}/execute/",
                        {"input": {"question": "q"}, "context": {option: value}}, format="json")

    assert (response.status_code, response.json()["extra"]["field"]) == (400, f"context.{option}")
    assert local_lm.stats()["chat_requests"] == 0


@pytest.mark.parametrize(
    ("type_", "config", "key"),
    [
        ("bootstrap_few_shot", {"max_rounds": 10**9}, "max_rounds"),
        ("bootstrap_few_shot", {"max_bootstrapped_demos": 10**6}, "max_bootstrapped_demos"),
        ("labeled_few_shot", {"k": 10**6}, "k"),
        ("mipro_v2", {"auto": None, "num_candidates": 10**6, "num_trials": 2}, "num_candidates"),
        ("simba", {"bsize": 10**6}, "bsize"),
        ("gepa", {"max_metric_calls": 10**9}, "max_metric_calls"),
        ("copro", {"breadth": 10**6}, "breadth"),
        ("bootstrap_random_search", {"num_threads": 10**4}, "num_threads"),
    ],
)
def test_optimizer_knobs_are_bounded(api, type_, config, key):
    response = api.post("/api/optimizers/", {"name": "o", "type": type_, "config": config}, format="json")

    assert response.status_code == 400, response.content
    assert f"'{key}' must be an integer from" in response.json()["message"]


def test_an_optimize_request_with_an_unbounded_knob_is_refused(api, user, local_lm):
    program = make_program(user, local_lm.url)
    dataset = make_dataset(program)
    response = api.post(
        f"/api/programs/{program.pk}/optimize/",
        {"optimizer": "bootstrap_few_shot", "dataset": str(dataset.pk), "metric": "exact_match",
         "config": {"max_rounds": 10**9, "max_bootstrapped_demos": 10**6}},
        format="json",
    )
    assert response.status_code == 400 and "must be an integer from" in response.json()["message"]


def optimize(api, program, dataset, budget=None):
    body = {"optimizer": "labeled_few_shot", "dataset": str(dataset.pk), "metric": "exact_match"}
    if budget is not None:
        body["budget"] = budget
    return api.post(f"/api/programs/{program.pk}/optimize/", body, format="json")


def test_every_optimization_run_gets_the_default_budget(api, user, local_lm):
    program = make_program(user, local_lm.url)
    response = optimize(api, program, make_dataset(program))

    assert response.status_code == 202, response.content
    assert response.json()["optimization_run"]["budget"] == {
        "max_lm_calls": django_settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS,
        "max_cost": django_settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_COST,
    }


def test_a_budget_may_be_lowered_and_raised_only_up_to_the_ceiling(api, user, local_lm, settings):
    settings.DSPEX_OPTIMIZATION_DEFAULT_MAX_LM_CALLS = 100
    settings.DSPEX_OPTIMIZATION_CEILING_MAX_LM_CALLS = 1000
    settings.DSPEX_OPTIMIZATION_CEILING_MAX_COST = 5.0
    program = make_program(user, local_lm.url)
    dataset = make_dataset(program)

    above = optimize(api, program, dataset, {"max_lm_calls": 1001})
    assert above.status_code == 400
    assert above.json()["extra"] == {"field": "budget.max_lm_calls", "ceiling": 1000}
    assert optimize(api, program, dataset, {"max_cost": 5.01}).status_code == 400

    raised = optimize(api, program, dataset, {"max_lm_calls": 1000, "max_cost": 5.0})
    assert raised.status_code == 202, raised.content
    assert raised.json()["optimization_run"]["budget"] == {"max_lm_calls": 1000, "max_cost": 5.0}
    api.post(f"/api/optimization-runs/{raised.json()['optimization_run']['id']}/cancel/")

    lowered = optimize(api, program, dataset, {"max_lm_calls": 10})
    assert lowered.status_code == 202, lowered.content
    assert lowered.json()["optimization_run"]["budget"]["max_lm_calls"] == 10
