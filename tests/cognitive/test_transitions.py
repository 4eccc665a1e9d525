"""Every lifecycle transition, legal and illegal, through the services, the models and the API."""

from __future__ import annotations

import pytest
from django.db import transaction
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from cognitive.errors import Conflict
from cognitive.models import (
    Execution,
    ExecutionStatus,
    Module,
    ModuleState,
    Program,
    ProgramStatus,
    Signature,
)
from cognitive.services.execution_jobs import execution_cancel
from cognitive.services.modules import module_fail, module_initialize, module_reset, module_update
from cognitive.services.programs import program_activate, program_archive, program_update
from cognitive.services.transitions import apply_transition
from tests.factories import ExecutionFactory, ModuleFactory, ProgramFactory, SignatureFactory

pytestmark = pytest.mark.django_db

# The lifecycles as the issue states them: transition → {source: target}. Written out by hand,
# so a transition added to or dropped from a model without a decision here fails the tests.
LIFECYCLES: dict[str, tuple[type, str, dict[str, dict[str, str]]]] = {
    "module": (
        Module,
        "state",
        {
            "initialize": {"uninitialized": "initializing"},
            "mark_ready": {"initializing": "ready"},
            "fail": {"initializing": "error", "ready": "error"},
            "reset": {"ready": "uninitialized", "error": "uninitialized"},
        },
    ),
    "program": (
        Program,
        "status",
        {
            "activate": {"draft": "active"},
            "start_optimization": {"active": "optimizing"},
            "finish_optimization": {"optimizing": "active"},
            "archive": {"draft": "archived", "active": "archived"},
        },
    ),
    "execution": (
        Execution,
        "status",
        # Claim, complete, retry and fail are the job core's conditional updates, tested in
        # tests/cognitive/services/test_jobs.py; cancel stays declared for the admin's button.
        {
            "cancel": {"pending": "cancelled", "running": "cancelled"},
        },
    ),
}
STATES = {
    "module": [s.value for s in ModuleState],
    "program": [s.value for s in ProgramStatus],
    "execution": [s.value for s in ExecutionStatus],
}
MAKE = {
    "module": lambda state: ModuleFactory(state=state),
    "program": lambda state: ProgramFactory(status=state),
    "execution": lambda state: ExecutionFactory(status=state),
}

MATRIX = [
    (kind, name, state, table.get(state))
    for kind, (_, _, transitions) in LIFECYCLES.items()
    for name, table in transitions.items()
    for state in STATES[kind]
]


def _id(case: tuple[str, str, str, str | None]) -> str:
    kind, name, state, target = case
    return f"{kind}-{name}-from-{state}-{'to-' + target if target else 'refused'}"


@pytest.mark.parametrize("kind", list(LIFECYCLES))
def test_models_declare_exactly_the_documented_lifecycle(kind):
    model, field, transitions = LIFECYCLES[kind]
    declared = {
        (t.name, t.source, t.target) for t in model._meta.get_field(field).get_all_transitions(model)
    }

    documented = {(name, source, target) for name, table in transitions.items() for source, target in table.items()}

    assert declared == documented


@pytest.mark.parametrize(("kind", "name", "state", "target"), MATRIX, ids=[_id(case) for case in MATRIX])
def test_every_transition_from_every_state(kind, name, state, target):
    model, field, _ = LIFECYCLES[kind]
    obj = MAKE[kind](state)

    if target is None:
        with pytest.raises(Conflict) as refused:
            apply_transition(obj, name, state_field=field)
        assert refused.value.status_code == 409
        assert f"that is {state}" in refused.value.message
        assert refused.value.extra == {"state": state, "transition": name}
        assert getattr(model.objects.get(pk=obj.pk), field) == state
    else:
        apply_transition(obj, name, state_field=field)
        assert getattr(obj, field) == target
        assert getattr(model.objects.get(pk=obj.pk), field) == target


@pytest.mark.parametrize("kind", list(LIFECYCLES))
def test_state_fields_cannot_be_assigned(kind):
    _, field, _ = LIFECYCLES[kind]
    obj = MAKE[kind](STATES[kind][0])

    with pytest.raises(AttributeError):
        setattr(obj, field, STATES[kind][-1])


def test_model_refuses_an_illegal_transition_without_the_service():
    program = ProgramFactory(status=ProgramStatus.ARCHIVED)

    with pytest.raises(TransitionNotAllowed):
        program.activate()
    assert program.status == ProgramStatus.ARCHIVED


# --------------------------------------------------------------------------- modules


def test_initialize_builds_the_module_and_makes_it_ready():
    module = ModuleFactory(type="chain_of_thought", config={"temperature": 0.5, "max_tokens": 100})

    module_initialize(module=module)

    module.refresh_from_db()
    assert (module.state, module.error_reason) == (ModuleState.READY, "")


def test_initialize_with_a_broken_config_in_the_row_is_an_error_with_the_reason():
    module = ModuleFactory()
    Module.objects.filter(pk=module.pk).update(config={"temperature": 7})  # bypasses validation
    module = Module.objects.get(pk=module.pk)

    module_initialize(module=module)

    module.refresh_from_db()
    assert module.state == ModuleState.ERROR
    assert "config.temperature" in module.error_reason


def test_initialize_with_a_broken_signature_in_the_row_is_an_error_with_the_reason():
    module = ModuleFactory()
    Signature.objects.filter(pk=module.signature_id).update(output_fields=[{"name": "answer", "type": "strng"}])
    module = Module.objects.get(pk=module.pk)

    module_initialize(module=module)

    module.refresh_from_db()
    assert module.state == ModuleState.ERROR
    assert "strng" in module.error_reason


def test_reset_clears_the_error_reason():
    module = ModuleFactory()
    Module.objects.filter(pk=module.pk).update(config={"bogus": 1})
    module = module_initialize(module=Module.objects.get(pk=module.pk))
    assert module.error_reason

    module_reset(module=module)

    module.refresh_from_db()
    assert (module.state, module.error_reason) == (ModuleState.UNINITIALIZED, "")


def test_a_ready_module_fails_with_a_reason():
    module = module_initialize(module=ModuleFactory())

    module_fail(module=module, reason="LM gone")

    module.refresh_from_db()
    assert (module.state, module.error_reason) == (ModuleState.ERROR, "LM gone")


@pytest.mark.parametrize(
    ("change", "back_to_uninitialized"),
    [
        ({"config": {"temperature": 0.9}}, True),
        ({"type": "chain_of_thought"}, True),
        ("new signature", True),
        ({"config": {"temperature": 0.1}}, False),  # the same config: nothing changed
        ({"name": "renamed"}, False),
        ({"cache_ttl": 300}, False),
    ],
)
@pytest.mark.parametrize("from_state", ["ready", "error"])
def test_redefining_a_module_sends_it_back_to_uninitialized(change, back_to_uninitialized, from_state):
    module = ModuleFactory(config={"temperature": 0.1}, state=from_state)
    if change == "new signature":
        change = {"signature": SignatureFactory(owner=module.owner)}

    module_update(module=module, **change)

    module.refresh_from_db()
    assert module.state == (ModuleState.UNINITIALIZED if back_to_uninitialized else from_state)


def test_patching_a_ready_modules_config_through_the_api_resets_it(client_for):
    module = module_initialize(module=ModuleFactory())
    client = client_for(module.owner)

    response = client.patch(f"/api/modules/{module.pk}/", {"config": {"temperature": 1.5}}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "uninitialized"
    assert client.post(f"/api/modules/{module.pk}/initialize/").json()["state"] == "ready"


def test_module_endpoints_report_an_error_state_with_its_reason(client_for):
    module = ModuleFactory()
    Module.objects.filter(pk=module.pk).update(config={"temperature": -1})

    body = client_for(module.owner).post(f"/api/modules/{module.pk}/initialize/").json()

    assert body["state"] == "error"
    assert "config.temperature" in body["error_reason"]


# --------------------------------------------------------------------------- programs and executions


def test_program_services_activate_and_archive():
    program = ProgramFactory()

    program_activate(program=program)
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    program_archive(program=program)
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ARCHIVED
    with pytest.raises(Conflict, match="archived"):
        program_activate(program=program)


@pytest.mark.parametrize("state", ["pending", "running"])
def test_cancel_service_stops_pending_and_running_executions(state):
    execution = ExecutionFactory(status=state)

    execution_cancel(execution=execution)

    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.CANCELLED
    assert row.finished_at is not None
    assert row.lease_expires_at is None


@pytest.mark.parametrize("state", ["completed", "failed", "cancelled"])
def test_cancel_service_refuses_final_executions(state):
    execution = ExecutionFactory(status=state)

    with pytest.raises(Conflict) as refused:
        execution_cancel(execution=execution)

    assert refused.value.message == f"cannot cancel an execution that is {state}"
    assert refused.value.extra == {"state": state, "transition": "cancel"}
    assert Execution.objects.get(pk=execution.pk).status == state


def test_cancel_service_sees_a_change_made_after_loading():
    execution = ExecutionFactory(status=ExecutionStatus.RUNNING)
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.COMPLETED)  # a worker finished it

    with pytest.raises(Conflict, match="completed"):
        execution_cancel(execution=execution)
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.COMPLETED


# --------------------------------------------------------------------------- through the API: 409 names the state


@pytest.mark.parametrize(
    ("make", "url", "state"),
    [
        (lambda: module_initialize(module=ModuleFactory()), "/api/modules/{pk}/initialize/", "ready"),
        (lambda: ModuleFactory(state="initializing"), "/api/modules/{pk}/initialize/", "initializing"),
        (lambda: ModuleFactory(), "/api/modules/{pk}/reset/", "uninitialized"),
        (lambda: ProgramFactory(status="active"), "/api/programs/{pk}/activate/", "active"),
        (lambda: ProgramFactory(status="optimizing"), "/api/programs/{pk}/activate/", "optimizing"),
        (lambda: ProgramFactory(status="optimizing"), "/api/programs/{pk}/archive/", "optimizing"),
        (lambda: ExecutionFactory(status="completed"), "/api/executions/{pk}/cancel/", "completed"),
        (lambda: ExecutionFactory(status="failed"), "/api/executions/{pk}/cancel/", "failed"),
        (lambda: ExecutionFactory(status="cancelled"), "/api/executions/{pk}/cancel/", "cancelled"),
    ],
)
def test_an_illegal_transition_through_the_api_is_409_naming_the_state(client_for, make, url, state):
    obj = make()

    response = client_for(obj.owner).post(url.format(pk=obj.pk))

    assert response.status_code == 409, response.content
    body = response.json()
    assert state in body["message"]
    assert body["extra"]["state"] == state


def test_staff_archiving_an_archived_program_is_409(client_for, staff):
    program = ProgramFactory(status=ProgramStatus.ARCHIVED)

    response = client_for(staff).post(f"/api/programs/{program.pk}/archive/")

    assert response.status_code == 409
    assert response.json()["message"] == "cannot archive a program that is archived"


@pytest.mark.parametrize("state", ["pending", "running"])
def test_cancel_through_the_api(client_for, state):
    execution = ExecutionFactory(status=state)

    response = client_for(execution.owner).post(f"/api/executions/{execution.pk}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert Execution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED


def test_api_transitions_change_the_row(client_for):
    program = ProgramFactory()
    client = client_for(program.owner)

    assert client.post(f"/api/programs/{program.pk}/activate/").status_code == 200
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE
    assert client.post(f"/api/programs/{program.pk}/archive/").json()["status"] == "archived"
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ARCHIVED


# --------------------------------------------------------------------------- concurrent transitions


def test_a_stale_copy_cannot_overwrite_a_transition_at_model_level():
    program = ProgramFactory()
    first, second = Program.objects.get(pk=program.pk), Program.objects.get(pk=program.pk)
    first.activate()
    first.save()

    second.archive()  # legal from the stale 'draft' it remembers
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        second.save()
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ACTIVE


@pytest.mark.parametrize(
    ("kind", "first", "second", "now"),
    [
        ("program", "activate", "archive", "active"),
        ("program", "archive", "activate", "archived"),
        ("module", "initialize", "initialize", "initializing"),
    ],
)
def test_the_second_of_two_racing_transitions_is_a_409(kind, first, second, now):
    model, field, _ = LIFECYCLES[kind]
    obj = MAKE[kind](STATES[kind][0])
    one, two = model.objects.get(pk=obj.pk), model.objects.get(pk=obj.pk)
    apply_transition(one, first, state_field=field)

    with pytest.raises(Conflict) as refused:
        apply_transition(two, second, state_field=field)

    assert refused.value.status_code == 409
    assert f"now {now}" in refused.value.message
    assert getattr(two, field) == now  # the loser is refreshed, not left with its own story
    assert getattr(model.objects.get(pk=obj.pk), field) == now


def test_a_stale_edit_after_a_transition_is_a_409_not_a_silent_overwrite():
    program = ProgramFactory(description="before")
    stale = Program.objects.get(pk=program.pk)
    program_activate(program=Program.objects.get(pk=program.pk))

    with pytest.raises(Conflict, match="active"):
        program_update(program=stale, description="edited")

    row = Program.objects.get(pk=program.pk)
    assert (row.status, row.description) == (ProgramStatus.ACTIVE, "before")


def test_redefining_a_signature_sends_its_built_modules_back_to_uninitialized():
    from cognitive.services.modules import module_initialize
    from cognitive.services.signatures import signature_update

    module = module_initialize(module=ModuleFactory())
    untouched = module_initialize(module=ModuleFactory())
    assert module.state == untouched.state == ModuleState.READY

    signature_update(signature=module.signature, name="renamed", metadata={"team": "a"})
    module.refresh_from_db()
    assert module.state == ModuleState.READY, "a rename or metadata change does not redefine anything"

    signature_update(signature=module.signature, spec="question: str -> answer: str, confidence: float")
    module.refresh_from_db()
    untouched.refresh_from_db()
    assert module.state == ModuleState.UNINITIALIZED
    assert untouched.state == ModuleState.READY
