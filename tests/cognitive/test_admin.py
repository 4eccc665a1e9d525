"""The Django admin: every page renders, transition buttons run the services, forms explain bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from cognitive.models import (
    Execution,
    ExecutionStatus,
    LanguageModel,
    Module,
    ModuleState,
    Optimizer,
    Program,
    ProgramVersion,
    Signature,
)
from cognitive.services.modules import module_initialize
from tests.factories import (
    ExecutionFactory,
    LanguageModelFactory,
    ModuleFactory,
    OptimizerFactory,
    ProgramFactory,
    ProgramVersionFactory,
    SignatureFactory,
)

pytestmark = pytest.mark.django_db

MODELS = {
    LanguageModel: lambda: LanguageModelFactory(),
    Signature: lambda: SignatureFactory(spec="question: str, context: list[str] -> answer: str"),
    Module: lambda: ModuleFactory(),
    Program: lambda: ProgramFactory(),
    ProgramVersion: lambda: ProgramVersionFactory(state={"answer": {"demos": []}}),
    Optimizer: lambda: OptimizerFactory(),
    Execution: lambda: _execution_with_a_child(),
}
NO_ADD = {ProgramVersion, Execution}  # written by services and workers only


def _execution_with_a_child() -> Execution:
    parent = ExecutionFactory(output={"answer": "4"}, trace=[{"step": "answer"}])
    ExecutionFactory(owner=parent.owner, program=parent.program, parent=parent, step_id="answer")
    return parent


def url(model: type, page: str, *args: Any) -> str:
    return reverse(f"admin:cognitive_{model._meta.model_name}_{page}", args=args)


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def change_form_data(response) -> dict[str, Any]:
    """What the browser would submit from a rendered change form, untouched."""
    assert response.status_code == 200
    data: dict[str, Any] = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is not None:
                data[form.add_prefix(name)] = value
                if form.fields[name].show_hidden_initial:  # fields with callable defaults post their initial too
                    data[form.add_initial_prefix(name)] = value
    return data


def press(client: Client, obj: Any, transition: str, **changes: Any):
    """Press a transition button on the change form, as django_fsm's template posts it."""
    change_url = url(type(obj), "change", obj.pk)
    data = {**change_form_data(client.get(change_url)), **changes, "_fsm_transition_to": transition}
    return client.post(change_url, data, follow=True)


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


# --------------------------------------------------------------------------- pages render


def test_non_staff_are_sent_to_the_login_page(user):
    client = Client()
    client.force_login(user)

    response = client.get(url(Module, "changelist"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize("model", list(MODELS), ids=lambda m: m.__name__)
def test_changelist_renders_with_rows(admin_client, model):
    obj = MODELS[model]()

    response = admin_client.get(url(model, "changelist"))

    assert response.status_code == 200
    assert str(obj.pk) in response.content.decode() or str(obj) in response.content.decode()
    assert admin_client.get(url(model, "changelist"), {"q": "x"}).status_code == 200


@pytest.mark.parametrize("model", list(MODELS), ids=lambda m: m.__name__)
def test_change_page_renders(admin_client, model):
    obj = MODELS[model]()

    response = admin_client.get(url(model, "change", obj.pk))

    assert response.status_code == 200
    assert response.context["original"].pk == obj.pk


@pytest.mark.parametrize("model", list(MODELS), ids=lambda m: m.__name__)
def test_add_page_renders_where_people_may_add(admin_client, model):
    response = admin_client.get(url(model, "add"))

    assert response.status_code == (403 if model in NO_ADD else 200)


def test_every_registered_cognitive_model_has_working_pages(admin_client, rf, staff):
    """Catches models registered later without a test of their own."""
    registered = {m: a for m, a in admin.site._registry.items() if m._meta.app_label == "cognitive"}
    request = rf.get("/")
    request.user = staff

    assert set(MODELS) <= set(registered)
    for model, model_admin in registered.items():
        assert admin_client.get(url(model, "changelist")).status_code == 200, model
        expected = 200 if model_admin.has_add_permission(request) else 403
        assert admin_client.get(url(model, "add")).status_code == expected, model


def test_admin_index_lists_every_cognitive_model(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()

    for model in MODELS:
        assert url(model, "changelist") in content


def test_signature_page_shows_parsed_fields_and_complexity(admin_client):
    signature = MODELS[Signature]()

    content = admin_client.get(url(Signature, "change", signature.pk)).content.decode()

    assert "<code>list[str]</code>" in content
    assert "<b>context</b>" in content
    assert response_readonly(content, "complexity") == "4"


def response_readonly(content: str, field: str) -> str:
    marker = '<div class="readonly">'
    start = content.index(marker, content.index(f"field-{field}")) + len(marker)
    return content[start : content.index("</div>", start)].strip()


def test_execution_page_shows_children_and_pretty_json(admin_client):
    parent = MODELS[Execution]()

    content = admin_client.get(url(Execution, "change", parent.pk)).content.decode()

    assert "answer" in content  # the child's step id, in the inline
    assert "&quot;answer&quot;: &quot;4&quot;" in content


def test_program_versions_cannot_be_changed_in_the_admin(admin_client):
    version = ProgramVersionFactory(scores={"accuracy": 0.5})
    change_url = url(ProgramVersion, "change", version.pk)

    response = admin_client.post(change_url, {"number": 99, "scores": '{"accuracy": 1.0}'})

    assert response.status_code == 403
    assert ProgramVersion.objects.get(pk=version.pk).scores == {"accuracy": 0.5}


# --------------------------------------------------------------------------- transition buttons


def test_buttons_offered_are_the_admin_transitions_for_the_current_state(admin_client):
    module = ModuleFactory()

    content = admin_client.get(url(Module, "change", module.pk)).content.decode()

    assert 'name="_fsm_transition_to"' in content
    assert 'value="initialize"' in content
    assert 'value="reset"' not in content  # not legal from uninitialized
    assert 'value="mark_ready"' not in content  # driven by the service, not a person


def test_initialize_button_builds_the_module(admin_client):
    module = ModuleFactory()

    response = press(admin_client, module, "initialize")

    assert response.status_code == 200
    assert Module.objects.get(pk=module.pk).state == ModuleState.READY
    assert ("success", "initialize: done") in messages_of(response)


def test_initialize_button_reports_a_failed_build(admin_client):
    module = ModuleFactory()
    Signature.objects.filter(pk=module.signature_id).update(output_fields=[{"name": "answer", "type": "strng"}])

    response = press(admin_client, module, "initialize")

    row = Module.objects.get(pk=module.pk)
    assert row.state == ModuleState.ERROR
    assert "strng" in row.error_reason
    assert [level for level, text in messages_of(response) if "strng" in text] == ["error"]


def test_reset_button(admin_client):
    module = module_initialize(module=ModuleFactory())

    press(admin_client, module, "reset")

    assert Module.objects.get(pk=module.pk).state == ModuleState.UNINITIALIZED


@pytest.mark.parametrize(
    ("start", "transition", "end"),
    [("draft", "activate", "active"), ("draft", "archive", "archived"), ("active", "archive", "archived")],
)
def test_program_buttons(admin_client, start, transition, end):
    program = ProgramFactory(status=start)

    press(admin_client, program, transition)

    assert Program.objects.get(pk=program.pk).status == end


@pytest.mark.parametrize("start", ["pending", "running"])
def test_cancel_button(admin_client, start):
    execution = ExecutionFactory(status=start)

    press(admin_client, execution, "cancel")

    row = Execution.objects.get(pk=execution.pk)
    assert row.status == ExecutionStatus.CANCELLED
    assert row.finished_at is not None


@pytest.mark.parametrize(
    ("make", "transition", "message"),
    [
        (lambda: ProgramFactory(status="archived"), "activate", "cannot activate a program that is archived"),
        (lambda: ProgramFactory(status="optimizing"), "archive", "cannot archive a program that is optimizing"),
        (lambda: ExecutionFactory(status="completed"), "cancel", "cannot cancel an execution that is completed"),
        (lambda: ModuleFactory(state="ready"), "initialize", "cannot initialize a module that is ready"),
    ],
)
def test_an_illegal_button_shows_an_error_and_changes_nothing(admin_client, make, transition, message):
    obj = make()
    field = "state" if isinstance(obj, Module) else "status"
    before = getattr(obj, field)

    response = press(admin_client, obj, transition)

    assert response.status_code == 200
    assert ("error", message) in messages_of(response)
    assert getattr(type(obj).objects.get(pk=obj.pk), field) == before


@pytest.mark.parametrize(
    ("make", "transition"),
    [
        (lambda: ModuleFactory(state="initializing"), "mark_ready"),
        (lambda: ExecutionFactory(status="running"), "complete"),
        (lambda: ExecutionFactory(status="pending"), "start"),
        (lambda: ProgramFactory(status="active"), "start_optimization"),
    ],
)
def test_a_transition_without_a_button_cannot_be_forced_by_posting_it(admin_client, make, transition):
    obj = make()
    field = "state" if isinstance(obj, Module) else "status"
    before = getattr(obj, field)

    response = press(admin_client, obj, transition)

    assert any(level == "error" for level, _ in messages_of(response))
    assert getattr(type(obj).objects.get(pk=obj.pk), field) == before


# --------------------------------------------------------------------------- forms


def test_signature_form_shows_a_bad_spec_with_its_position(admin_client, staff):
    spec = "question: str -> answer: strng"

    data = {"name": "s", "spec": spec, "owner": staff.pk, "metadata": "{}"}

    response = admin_client.post(url(Signature, "add"), data)

    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors["spec"]
    assert errors == [f"unknown type 'strng' for field 'answer' (at character {spec.index('strng')})"]
    assert not Signature.objects.exists()


def test_signature_form_stores_the_parsed_fields(admin_client, staff):
    response = admin_client.post(
        url(Signature, "add"), {"name": "s", "spec": "q -> a: int", "owner": staff.pk, "metadata": "{}"}
    )

    assert response.status_code == 302
    signature = Signature.objects.get(name="s")
    assert signature.output_fields == [{"name": "a", "type": "int", "description": ""}]


@pytest.mark.parametrize(
    ("config", "words"), [('{"temprature": 1}', "temprature"), ('{"temperature": 4}', "config.temperature")]
)
def test_module_form_refuses_a_bad_config(admin_client, staff, config, words):
    signature = SignatureFactory(owner=staff)
    data = {"name": "m", "type": "predict", "signature": signature.pk, "config": config, "cache_ttl": 0}

    response = admin_client.post(url(Module, "add"), {**data, "owner": staff.pk})

    assert response.status_code == 200
    assert words in " ".join(response.context["adminform"].form.errors["config"])
    assert not Module.objects.exists()


def test_editing_a_ready_modules_config_in_the_admin_resets_it(admin_client):
    module = module_initialize(module=ModuleFactory(config={"temperature": 0.1}))
    change_url = url(Module, "change", module.pk)
    data = change_form_data(admin_client.get(change_url))

    response = admin_client.post(change_url, {**data, "config": '{"temperature": 0.9}'})

    assert response.status_code == 302
    row = Module.objects.get(pk=module.pk)
    assert row.config == {"temperature": 0.9}
    assert row.state == ModuleState.UNINITIALIZED


def test_optimizer_form_refuses_an_unknown_argument(admin_client, staff):
    response = admin_client.post(
        url(Optimizer, "add"), {"name": "o", "type": "copro", "config": '{"k": 3}', "owner": staff.pk}
    )

    assert response.status_code == 200
    assert "does not accept 'k'" in " ".join(response.context["adminform"].form.errors["config"])
