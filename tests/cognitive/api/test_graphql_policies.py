"""One policy, two APIs: each case goes through REST and GraphQL and must get the same answer.

REST's 404 is GraphQL's null for a read and an error with code 404 for a mutation; a REST 409
(or 400) is the same code in the mutation's `errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser

from cognitive.models import ExecutionStatus, Program
from cognitive.services.datasets import dataset_create
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_archive, program_create
from cognitive.services.signatures import signature_create
from cognitive.services.versions import program_version_snapshot
from tests.cognitive.api.graphql_helpers import gql
from tests.factories import ExecutionFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@dataclass
class World:
    owner: AbstractBaseUser
    other: AbstractBaseUser
    staff: AbstractBaseUser
    active: Program
    draft: Program
    archived: Program
    optimizing: Program
    objects: dict[str, Any]


@pytest.fixture
def world() -> World:
    owner, other, staff = UserFactory(), UserFactory(), StaffFactory()
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    module_create(owner=owner, name="qa", type="predict", signature=signature)
    pipeline = {"steps": [{"id": "qa", "module": "qa", "inputs": {"question": "$input.question"}}]}

    def program(name: str) -> Program:
        return program_create(owner=owner, name=name, pipeline=pipeline)

    active = program_activate(program=program("active"))
    draft = program("draft")
    archived = program_archive(program=program_activate(program=program("archived")))
    optimizing = program_activate(program=program("optimizing"))
    Program.objects.filter(pk=optimizing.pk).update(status="optimizing")
    optimizing.refresh_from_db()
    objects = {
        "execution": ExecutionFactory(owner=owner, program=active),
        "finished": ExecutionFactory(owner=owner, program=active, status=ExecutionStatus.COMPLETED),
        "dataset": dataset_create(owner=owner, name="ds", program=active),
        "draft_dataset": dataset_create(owner=owner, name="ds-draft", program=draft),
        "optimizing_dataset": dataset_create(owner=owner, name="ds-optimizing", program=optimizing),
        "version": program_version_snapshot(program=active),
        "foreign_version": program_version_snapshot(program=program("elsewhere")),
    }
    return World(owner, other, staff, active, draft, archived, optimizing, objects)


def rest_status(client: Any, method: str, url: str, body: dict[str, Any] | None = None) -> int:
    return getattr(client, method)(url, body or {}, format="json").status_code


def graphql_read(client: Any, field: str, id_: Any) -> int:
    response = gql(client, f'{{ {field}(id: "{id_}") {{ id }} }}')
    assert response.status_code == 200 and "errors" not in response.json(), response.content
    return 404 if response.json()["data"][field] is None else 200


def graphql_mutation(client: Any, call: str) -> int:
    name = call.split("(")[0]
    response = gql(client, f"mutation {{ {call} {{ errors {{ code message }} }} }}")
    assert response.status_code == 200 and "errors" not in response.json(), response.content
    errors = response.json()["data"][name]["errors"]
    return errors[0]["code"] if errors else 200


# (name, actor, expected, REST request, GraphQL request): requests are built from the world.
Case = tuple[str, str, int, Callable[[World], tuple[str, str, dict[str, Any] | None]], Callable[[World], tuple]]

RUN = {"input": {"question": "q"}}


def optimize_body(w: World, dataset: str) -> dict[str, Any]:
    return {"optimizer": "bootstrap_few_shot", "dataset": str(w.objects[dataset].pk), "metric": "exact_match"}


def optimize_call(program: Program, w: World, dataset: str) -> str:
    body = optimize_body(w, dataset)
    return (f'optimizeProgram(programId: "{program.pk}", optimizer: "{body["optimizer"]}", '
            f'dataset: "{body["dataset"]}", metric: "{body["metric"]}")')


CASES: list[Case] = [
    # reads
    ("owner reads an active program", "owner", 200,
     lambda w: ("get", f"/api/programs/{w.active.pk}/", None), lambda w: ("read", "getProgram", w.active.pk)),
    ("another user cannot see it", "other", 404,
     lambda w: ("get", f"/api/programs/{w.active.pk}/", None), lambda w: ("read", "getProgram", w.active.pk)),
    ("staff read anyone's", "staff", 200,
     lambda w: ("get", f"/api/programs/{w.active.pk}/", None), lambda w: ("read", "getProgram", w.active.pk)),
    ("archived is hidden from its owner", "owner", 404,
     lambda w: ("get", f"/api/programs/{w.archived.pk}/", None), lambda w: ("read", "getProgram", w.archived.pk)),
    ("archived is visible to staff", "staff", 200,
     lambda w: ("get", f"/api/programs/{w.archived.pk}/", None), lambda w: ("read", "getProgram", w.archived.pk)),
    ("a malformed id is absent", "owner", 404,
     lambda w: ("get", "/api/programs/not-an-id/", None), lambda w: ("read", "getProgram", "not-an-id")),
    ("owner reads an execution", "owner", 200,
     lambda w: ("get", f"/api/executions/{w.objects['execution'].pk}/", None),
     lambda w: ("read", "execution", w.objects["execution"].pk)),
    ("another user's execution is absent", "other", 404,
     lambda w: ("get", f"/api/executions/{w.objects['execution'].pk}/", None),
     lambda w: ("read", "execution", w.objects["execution"].pk)),
    # running
    ("a draft cannot run", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.draft.pk}/run/", RUN),
     lambda w: ("mutate", f'runProgram(programId: "{w.draft.pk}", input: {{question: "q"}}, queue: true)')),
    ("another user's program cannot run", "other", 404,
     lambda w: ("post", f"/api/programs/{w.active.pk}/run/", RUN),
     lambda w: ("mutate", f'runProgram(programId: "{w.active.pk}", input: {{question: "q"}}, queue: true)')),
    ("an archived program cannot run", "owner", 404,
     lambda w: ("post", f"/api/programs/{w.archived.pk}/run/", RUN),
     lambda w: ("mutate", f'runProgram(programId: "{w.archived.pk}", input: {{question: "q"}}, queue: true)')),
    ("a batch of a draft", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.draft.pk}/run-batch/", {"inputs": [{"question": "q"}]}),
     lambda w: ("mutate", f'runBatch(programId: "{w.draft.pk}", inputs: [{{question: "q"}}])')),
    ("another user's execution cannot be cancelled", "other", 404,
     lambda w: ("post", f"/api/executions/{w.objects['execution'].pk}/cancel/", None),
     lambda w: ("mutate", f'cancelExecution(id: "{w.objects["execution"].pk}")')),
    ("a finished execution cannot be cancelled", "owner", 409,
     lambda w: ("post", f"/api/executions/{w.objects['finished'].pk}/cancel/", None),
     lambda w: ("mutate", f'cancelExecution(id: "{w.objects["finished"].pk}")')),
    # lifecycle
    ("an active program cannot be activated again", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.active.pk}/activate/", None),
     lambda w: ("mutate", f'activateProgram(id: "{w.active.pk}")')),
    ("another user cannot archive it", "other", 404,
     lambda w: ("post", f"/api/programs/{w.active.pk}/archive/", None),
     lambda w: ("mutate", f'archiveProgram(id: "{w.active.pk}")')),
    ("staff archive anyone's", "staff", 200,
     lambda w: ("post", f"/api/programs/{w.active.pk}/archive/", None),
     lambda w: ("mutate", f'archiveProgram(id: "{w.active.pk}")')),
    # optimization: only when active
    ("optimize a draft", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.draft.pk}/optimize/", optimize_body(w, "draft_dataset")),
     lambda w: ("mutate", optimize_call(w.draft, w, "draft_dataset"))),
    ("optimize while optimizing", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.optimizing.pk}/optimize/", optimize_body(w, "optimizing_dataset")),
     lambda w: ("mutate", optimize_call(w.optimizing, w, "optimizing_dataset"))),
    ("optimize another user's program", "other", 404,
     lambda w: ("post", f"/api/programs/{w.active.pk}/optimize/", optimize_body(w, "dataset")),
     lambda w: ("mutate", optimize_call(w.active, w, "dataset"))),
    # versions
    ("promote a version of another program", "owner", 400,
     lambda w: ("post", f"/api/programs/{w.active.pk}/promote/", {"version": str(w.objects["foreign_version"].pk)}),
     lambda w: ("mutate",
                f'promoteVersion(programId: "{w.active.pk}", versionId: "{w.objects["foreign_version"].pk}")')),
    ("promote a version of a draft", "owner", 400,
     lambda w: ("post", f"/api/programs/{w.draft.pk}/promote/", {"version": str(w.objects["version"].pk)}),
     lambda w: ("mutate", f'promoteVersion(programId: "{w.draft.pk}", versionId: "{w.objects["version"].pk}")')),
    ("promote for another user", "other", 404,
     lambda w: ("post", f"/api/programs/{w.active.pk}/promote/", {"version": str(w.objects["version"].pk)}),
     lambda w: ("mutate", f'promoteVersion(programId: "{w.active.pk}", versionId: "{w.objects["version"].pk}")')),
    ("roll back with nothing to return to", "owner", 409,
     lambda w: ("post", f"/api/programs/{w.active.pk}/rollback/", None),
     lambda w: ("mutate", f'rollbackProgram(programId: "{w.active.pk}")')),
]


@pytest.mark.parametrize(("name", "actor", "expected", "rest", "graphql"), CASES, ids=[case[0] for case in CASES])
def test_rest_and_graphql_give_the_same_answer(client_for, world, name, actor, expected, rest, graphql):
    user = {"owner": world.owner, "other": world.other, "staff": world.staff}[actor]
    kind, *args = graphql(world)
    # Each API gets its own copy of the world's state: a first call must not change the second's answer.
    from django.db import transaction

    with transaction.atomic():
        rest_answer = rest_status(client_for(user), *rest(world))
        transaction.set_rollback(True)
    with transaction.atomic():
        graphql_answer = graphql_read(client_for(user), *args) if kind == "read" else graphql_mutation(
            client_for(user), args[0])
        transaction.set_rollback(True)

    assert (rest_answer, graphql_answer) == (expected, expected)


@pytest.mark.parametrize("query", [
    "{ programs { edges { node { id } } } }",
    'mutation { archiveProgram(id: "00000000-0000-0000-0000-000000000000") { errors { code } } }',
])
def test_anonymous_is_refused_with_a_json_body_as_rest_is(client_for, query):
    rest = client_for(None).get("/api/programs/")
    response = client_for(None).post("/graphql/", {"query": query}, format="json")
    assert rest.status_code == response.status_code == 401
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == 401
    assert response["WWW-Authenticate"] == "Token"


def test_lists_are_scoped_like_rest(client_for, world):
    for actor, user in (("owner", world.owner), ("other", world.other), ("staff", world.staff)):
        rest = {row["id"] for row in client_for(user).get("/api/programs/?limit=500").json()["results"]}
        body = gql(client_for(user), "{ programs(first: 100) { edges { node { id } } } }").json()
        graph = {edge["node"]["id"] for edge in body["data"]["programs"]["edges"]}
        assert rest == graph, actor
    assert str(world.archived.pk) in graph  # staff
