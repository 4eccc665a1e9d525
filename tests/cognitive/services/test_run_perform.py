"""`execution_perform`, the job layer's entry point, on claimed rows (no HTTP)."""

from __future__ import annotations

import pytest

from cognitive.errors import ExecutionFailed, InvalidInput, RetryableError
from cognitive.models import Execution, ExecutionStatus, Module, ProgramVersion
from cognitive.services.execution_jobs import EXECUTIONS, execution_run_inline
from cognitive.services.jobs import core
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.run_perform import execution_perform
from cognitive.services.signatures import signature_create
from tests.factories import LanguageModelFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def owner():
    return UserFactory()


@pytest.fixture
def qa(owner, local_lm):
    lm = LanguageModelFactory(api_base=local_lm.url)
    signature = signature_create(owner=owner, name="qa", spec="question: str -> answer: str")
    return module_create(owner=owner, name="qa", type="predict", signature=signature, lm=lm)


def claimed(**fields) -> Execution:
    execution = Execution.objects.create(max_attempts=2, **fields)
    return core.claim(EXECUTIONS, execution.pk, worker_id="test")


def two_steps(owner):
    pipeline = {"steps": [{"id": "a", "module": "qa"},
                          {"id": "b", "module": "qa", "inputs": {"question": "$a.answer"}}]}
    return program_activate(program=program_create(owner=owner, name="p", pipeline=pipeline))


def test_a_program_run_writes_a_child_per_step_and_leaves_the_status_to_the_job_layer(owner, qa):
    program = two_steps(owner)
    execution = claimed(owner=owner, program=program, input={"question": "What is 1 + 1?"})

    result = execution_perform(execution=execution)

    assert set(result.output) == {"answer"} and result.duration_ms >= 0
    assert [s["step"] for s in result.trace] == ["a", "b"]
    assert result.metrics["lm_calls"] == 2 and result.metrics["steps"] == 2
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.RUNNING
    children = list(execution.children.order_by("created_at"))
    assert [(c.step_id, c.status, c.module, c.attempt) for c in children] == [
        ("a", ExecutionStatus.COMPLETED, qa, 1), ("b", ExecutionStatus.COMPLETED, qa, 1)]
    assert children[1].input == {"question": children[0].output["answer"]}
    assert children[0].finished_at >= children[0].started_at


def test_a_failed_run_keeps_the_steps_it_got_through(owner, qa, local_lm):
    program = two_steps(owner)
    execution = claimed(owner=owner, program=program, input={"question": "q"})
    local_lm.configure(fail_500_rate=1.0)

    with pytest.raises(RetryableError, match="step 'a'"):
        execution_perform(execution=execution)

    execution.refresh_from_db()
    assert [s["step"] for s in execution.trace] == ["a"]
    assert execution.metrics["failed_lm_calls"] == 1
    assert execution.children.get().error["type"] == "LMServerError"


def test_should_stop_cancels_between_steps(owner, qa):
    program = two_steps(owner)
    execution = claimed(owner=owner, program=program, input={"question": "q"})
    with pytest.raises(ExecutionFailed) as error:
        execution_perform(execution=execution, should_stop=lambda: execution.children.exists())

    assert error.value.extra == {"cancelled": True}
    assert list(execution.children.values_list("step_id", flat=True)) == ["a"]


def test_a_module_execute(owner, qa):
    execution = claimed(owner=owner, module=qa, input={"question": "What is 2 + 2?"}, context={"temperature": 0.1})

    result = execution_perform(execution=execution)

    assert set(result.output) == {"answer"}
    assert [e["type"] for e in result.trace] == ["lm_call"]
    assert not execution.children.exists()


def test_bad_input_in_a_queued_row_is_invalid_input(owner, qa):
    with pytest.raises(InvalidInput) as error:
        execution_perform(execution=claimed(owner=owner, module=qa, input={"question": 1}))
    assert error.value.extra["field"] == "question"


def test_a_program_whose_module_disappeared_fails_without_retrying(owner, qa):
    program = two_steps(owner)
    execution = claimed(owner=owner, program=program, input={"question": "q"})
    Module.objects.filter(pk=qa.pk).update(name="renamed")

    with pytest.raises(ExecutionFailed, match=r"no longer valid: steps\[0\]\.module: unknown module 'qa'"):
        execution_perform(execution=execution)


def test_a_version_state_that_does_not_fit_fails(owner, qa):
    program = two_steps(owner)
    version = ProgramVersion.objects.create(program=program, number=1, state={"a": {"nonsense": True}})
    execution = claimed(owner=owner, program=program, version=version, input={"question": "q"})

    with pytest.raises(ExecutionFailed, match="cannot load the program") as error:
        execution_perform(execution=execution)
    assert error.value.extra["path"] == "state.a"


def test_the_job_layer_runs_it_end_to_end(owner, qa):
    execution = Execution.objects.create(owner=owner, program=two_steps(owner), input={"question": "q"})

    done = execution_run_inline(execution=execution)

    assert done.status == ExecutionStatus.COMPLETED and set(done.output) == {"answer"}
    assert [s["step"] for s in done.trace] == ["a", "b"] and done.metrics["lm_calls"] == 2


def test_neither_program_nor_module(owner):
    with pytest.raises(ExecutionFailed, match="neither"):
        execution_perform(execution=claimed(owner=owner, input={}))
