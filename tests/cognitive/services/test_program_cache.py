"""Compiled plans and prepared modules are reused while their rows are unchanged, and rebuilt when one changes."""

from __future__ import annotations

import dspy
import pytest
from django.conf import settings

from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, Module, Program, ProgramVersion
from cognitive.services.lms import lm_save
from cognitive.services.modules import module_create, module_update
from cognitive.services.program_cache import compiled_plan, prepared_modules
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create, signature_update
from cognitive.services.versions import program_version_snapshot
from tests.factories import LanguageModelFactory, UserFactory

pytestmark = pytest.mark.django_db

LM_BASE = "http://127.0.0.1:9101/v1"
OTHER_BASE = "http://127.0.0.1:9102/v1"
DEFAULT_ROW_BASE = "http://127.0.0.1:9103/v1"


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def lm():
    return LanguageModelFactory(api_base=LM_BASE)


@pytest.fixture
def signature(owner):
    return signature_create(owner=owner, name="qa", spec="question: str -> answer: str")


@pytest.fixture
def qa(owner, signature, lm):
    return module_create(owner=owner, name="qa", type="predict", signature=signature, lm=lm)


@pytest.fixture
def program(owner, qa):
    pipeline = {"steps": [{"id": "a", "module": "qa"},
                          {"id": "b", "module": "qa", "inputs": {"question": "$a.answer"}}]}
    return program_activate(program=program_create(owner=owner, name="p", pipeline=pipeline))


def fresh(program: Program) -> Program:
    """The row as a new message would load it: a different object with the same values."""
    return Program.objects.get(pk=program.pk)


def output_names(prepared) -> list[str]:
    return [field.name for field in prepared.outputs]


def test_an_unchanged_program_reuses_its_plan_and_modules_and_costs_one_query(program, django_assert_num_queries):
    first = compiled_plan(program)
    modules = prepared_modules(first, version_id=None)
    assert set(modules) == {"a", "b"}
    assert set(first.rows) == {"qa"}

    reloaded = fresh(program)
    with django_assert_num_queries(1):
        again = compiled_plan(reloaded)
    assert again.plan is first.plan
    assert again.key == first.key
    with django_assert_num_queries(0):  # the module has its own LM: no default to look up
        assert prepared_modules(again, version_id=None) is modules


def test_redefining_the_signature_gives_a_new_plan_and_module_with_the_new_field(program, signature):
    first = compiled_plan(program)
    old_modules = prepared_modules(first, version_id=None)
    assert output_names(old_modules["a"]) == ["answer"]

    signature_update(signature=signature, spec="question: str -> answer: str, confidence: float")

    again = compiled_plan(fresh(program))
    assert again.plan is not first.plan
    assert [f.name for f in again.plan.steps()[0].outputs] == ["answer", "confidence"]
    modules = prepared_modules(again, version_id=None)
    assert modules is not old_modules
    assert output_names(modules["a"]) == ["answer", "confidence"]
    assert list(modules["a"].module.signature.output_fields) == ["answer", "confidence"]


def test_editing_the_module_gives_a_new_prepared_module(program, qa):
    first = compiled_plan(program)
    old_modules = prepared_modules(first, version_id=None)
    assert type(old_modules["a"].module) is dspy.Predict

    module_update(module=Module.objects.get(pk=qa.pk), type="chain_of_thought", config={"temperature": 0.25})

    modules = prepared_modules(compiled_plan(fresh(program)), version_id=None)
    assert modules is not old_modules
    assert isinstance(modules["a"].module, dspy.ChainOfThought)
    assert modules["a"].lm.kwargs["temperature"] == 0.25


def test_saving_the_modules_lm_rebinds_the_prepared_module(program, lm):
    old_modules = prepared_modules(compiled_plan(program), version_id=None)
    assert old_modules["a"].lm.kwargs["api_base"] == LM_BASE

    lm_save(lm=LanguageModel.objects.get(pk=lm.pk), api_base=OTHER_BASE)

    modules = prepared_modules(compiled_plan(fresh(program)), version_id=None)
    assert modules is not old_modules
    assert modules["a"].lm.kwargs["api_base"] == OTHER_BASE
    assert modules["b"].lm.kwargs["api_base"] == OTHER_BASE


def test_each_version_gets_its_own_modules_with_its_state(program):
    compiled = compiled_plan(program)
    snapshot = program_version_snapshot(program=program)
    state = {step: dict(module_state) for step, module_state in snapshot.state.items()}
    state["a"]["demos"] = [{"question": "What is 40 + 2?", "answer": "42"}]
    tuned = ProgramVersion.objects.create(program=program, number=snapshot.number + 1, state=state)

    plain = prepared_modules(compiled, version_id=snapshot.pk)
    with_demos = prepared_modules(compiled, version_id=tuned.pk)

    assert with_demos is not plain
    assert plain["a"].module.demos == []
    assert [dict(demo)["answer"] for demo in with_demos["a"].module.demos] == ["42"]
    assert with_demos["b"].module.demos == []
    # Each is cached under its own version.
    again = compiled_plan(fresh(program))
    assert prepared_modules(again, version_id=tuned.pk) is with_demos
    assert prepared_modules(again, version_id=snapshot.pk) is plain


def test_a_deleted_module_makes_the_cached_program_invalid(program, qa):
    compiled_plan(program)  # cached while the module exists

    Module.objects.filter(pk=qa.pk).delete()

    with pytest.raises(InvalidInput) as error:
        compiled_plan(fresh(program))
    assert "unknown module 'qa'" in error.value.message
    assert error.value.extra["path"] == "steps[0].module"


def test_a_default_lm_row_created_later_is_used_by_modules_without_an_lm(owner, signature):
    module_create(owner=owner, name="plain", type="predict", signature=signature)
    program = program_activate(
        program=program_create(owner=owner, name="q", pipeline={"steps": [{"id": "a", "module": "plain"}]})
    )
    assert not LanguageModel.objects.filter(name=settings.DSPEX_DEFAULT_LM_NAME).exists()
    before = prepared_modules(compiled_plan(program), version_id=None)
    assert before["a"].lm.model == settings.DSPEX_DEFAULT_LM

    LanguageModelFactory(name=settings.DSPEX_DEFAULT_LM_NAME, model="openai/default-row", api_base=DEFAULT_ROW_BASE)

    after = prepared_modules(compiled_plan(fresh(program)), version_id=None)
    assert after is not before
    assert after["a"].lm.model == "openai/default-row"
    assert after["a"].lm.kwargs["api_base"] == DEFAULT_ROW_BASE
