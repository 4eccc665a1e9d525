"""No oracle (issue 11): filtering by another user's id answers exactly like an id that exists nowhere.

Before: `?program=<another user's id>` answered 200 and empty, a random id 400 ("select a valid
choice"), so the difference told that the id existed. Now both are 200 and empty.
"""

from __future__ import annotations

import uuid

import pytest

from tests.factories import ExecutionFactory, ModuleFactory, ProgramVersionFactory

pytestmark = pytest.mark.django_db

FILTERS = [
    ("/api/executions/", "program"),
    ("/api/executions/", "module"),
    ("/api/executions/", "parent"),
    ("/api/executions/", "version"),
    ("/api/program-versions/", "program"),
    ("/api/modules/", "signature"),
    ("/api/batches/", "program"),
    ("/api/datasets/", "program"),
    ("/api/optimization-runs/", "program"),
]


@pytest.fixture
def theirs(other_user):
    execution = ExecutionFactory(owner=other_user)
    module = ModuleFactory(owner=other_user)
    version = ProgramVersionFactory(program=execution.program)
    return {
        "program": execution.program.pk, "module": module.pk, "parent": execution.pk, "version": version.pk,
        "signature": module.signature.pk,
    }


@pytest.mark.parametrize(("url", "name"), FILTERS)
def test_another_users_id_answers_like_a_random_one(api, theirs, url, name):
    existing = api.get(url, {name: str(theirs[name])})
    random_id = api.get(url, {name: str(uuid.uuid4())})

    assert existing.status_code == random_id.status_code == 200
    assert existing.json() == random_id.json() == {"count": 0, "next": None, "previous": None, "results": []}


@pytest.mark.parametrize(("url", "name"), FILTERS)
def test_a_malformed_id_is_a_400_naming_the_filter(api, url, name):
    response = api.get(url, {name: "not-a-uuid"})
    assert response.status_code == 400 and response.json()["message"].startswith(f"{name}:")


def test_the_owner_still_filters_by_their_own_ids(api, user):
    mine = ExecutionFactory(owner=user)
    ExecutionFactory(owner=user)

    found = api.get("/api/executions/", {"program": str(mine.program.pk)}).json()

    assert [row["id"] for row in found["results"]] == [str(mine.pk)]

