"""`POST /api/programs/{id}/optimize/` is throttled per user (scope `optimize`): 429 with Retry-After."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache

from cognitive.models import OptimizationRun, Program, ProgramStatus
from tests.optimization_helpers import make_dataset, make_program

pytestmark = pytest.mark.django_db

LM_URL = "http://127.0.0.1:9/v1"  # never called: these tests only queue runs


@pytest.fixture
def rate(settings):
    """The optimize scope at 3/min (the rates are read when DRF is imported, so both places are patched)."""
    cache.clear()
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    with mock.patch.dict(rates, {"optimize": "3/min"}), mock.patch(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {**rates, "optimize": "3/min"}
    ):
        yield
    cache.clear()


def programs_with_data(owner, *names):
    return [(program, make_dataset(program)) for program in (make_program(owner, LM_URL, name) for name in names)]


def optimize(client, program, dataset):
    body = {"optimizer": "labeled_few_shot", "dataset": str(dataset.pk), "metric": "exact_match"}
    return client.post(f"/api/programs/{program.pk}/optimize/", body, format="json")


def test_optimize_is_throttled_per_user_with_retry_after(api, client_for, user, other_user, rate):
    targets = programs_with_data(user, "a", "b", "c", "d")
    codes = [optimize(api, program, dataset).status_code for program, dataset in targets]
    assert codes == [202, 202, 202, 429]

    refused = optimize(api, *targets[3])
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused.json()["message"]
    # A refused request starts nothing: no run, the program is still active.
    assert OptimizationRun.objects.filter(owner=user).count() == 3
    assert not OptimizationRun.objects.filter(program=targets[3][0]).exists()
    assert Program.objects.get(pk=targets[3][0].pk).status == ProgramStatus.ACTIVE

    # Another user has a budget of their own.
    [(theirs, their_data)] = programs_with_data(other_user, "x")
    assert optimize(client_for(other_user), theirs, their_data).status_code == 202
    # The budget is the optimize scope's: other program actions are not throttled by it.
    assert api.post(f"/api/programs/{targets[0][0].pk}/rollback/").status_code == 409  # nothing to roll back


def test_refused_starts_count_against_the_rate(api, user, rate):
    # A 409 (already optimizing) is still a request: the rate limits attempts, not successes.
    [(program, dataset)] = programs_with_data(user, "a")
    codes = [optimize(api, program, dataset).status_code for _ in range(4)]
    assert codes == [202, 409, 409, 429]

