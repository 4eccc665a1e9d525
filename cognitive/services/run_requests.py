"""Asking for runs (the API side): check a request once, then run it now or queue it.

`program_run_request` and `module_run_request` check everything a run needs before any row is
written or any LM is called (the program serves runs and still compiles, the input fits, the
call options and the priority are valid) and return a `RunRequest`. `run_now` and `run_enqueue`
both take it; a batch is checked whole by `batch_run_request`, so one bad item queues nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from cognitive.engine.modules import validate_module_config
from cognitive.engine.plan import PipelinePlan
from cognitive.engine.validation import check_program_input
from cognitive.engine.values import check_record
from cognitive.errors import Conflict, InvalidInput
from cognitive.models import Batch, Execution, Module, ModuleState, Program
from cognitive.policies import RUNNABLE_PROGRAM_STATUSES
from cognitive.services.budgets import check_run_budget
from cognitive.services.common import require_json_object
from cognitive.services.execution_jobs import EXECUTIONS, execution_run_inline
from cognitive.services.jobs.publishing import publish_on_commit
from cognitive.services.lm_access import check_call_lm
from cognitive.services.pipelines import module_signature
from cognitive.services.program_cache import compiled_plan
from cognitive.telemetry.spans import current_traceparent


@dataclass(frozen=True)
class RunRequest:
    """A checked request for one run of a program or of a single module."""

    owner: AbstractBaseUser
    input: dict[str, Any]
    program: Program | None = None
    module: Module | None = None
    context: dict[str, Any] = field(default_factory=dict)
    priority: int = 5
    idempotency_key: str = ""

    def new_row(self, **values: Any) -> Execution:
        return Execution(
            owner=self.owner,
            program=self.program,
            version_id=self.program.active_version_id if self.program is not None else None,
            module=self.module,
            input=self.input,
            context=self.context,
            priority=self.priority,
            max_attempts=settings.DSPEX_MAX_ATTEMPTS,
            trace_context=current_traceparent(),
            **values,
        )


@dataclass(frozen=True)
class BatchRunRequest:
    program: Program
    owner: AbstractBaseUser
    inputs: list[dict[str, Any]]
    priority: int = 5


# --------------------------------------------------------------------------- checks


def check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise InvalidInput("priority must be an integer from 0 (first) to 9 (last)", {"field": "priority"})
    return priority


def program_check_runnable(program: Program) -> PipelinePlan:
    """An active program with a pipeline that still compiles; Conflict (409) otherwise."""
    if program.status not in RUNNABLE_PROGRAM_STATUSES:
        raise Conflict(f"only an active program can run; this one is {program.status}", {"state": program.status})
    if not program.pipeline:
        raise Conflict("the program has no pipeline steps yet", {"state": program.status})
    try:
        return compiled_plan(program).plan
    except InvalidInput as exc:
        raise Conflict(f"the program's pipeline is no longer valid: {exc.message}", exc.extra) from None


_CONTEXT_KEYS = {"lm", "temperature", "max_tokens"}


def check_execute_context(context: Any, module: Module) -> dict[str, Any]:
    """Call options of a module execute: `lm` (a LanguageModel name), `temperature`, `max_tokens`."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise InvalidInput("context must be a JSON object", {"field": "context"})
    for key in context:
        if key not in _CONTEXT_KEYS:
            allowed = ", ".join(sorted(_CONTEXT_KEYS))
            raise InvalidInput(f"unknown context key '{key}'; allowed: {allowed}", {"field": f"context.{key}"})
    check_call_lm(context, module)
    options = {k: v for k, v in context.items() if k != "lm"}
    try:
        validate_module_config(module.type, {**module.config, **options})
    except InvalidInput as exc:
        path = str(exc.extra.get("path", "")).replace("config.", "context.")
        raise InvalidInput(exc.message.replace("config.", "context."), {"field": path}) from None
    return context


def program_run_request(
    *, program: Program, owner: AbstractBaseUser, input: Any, priority: Any = 5, idempotency_key: str = ""
) -> RunRequest:
    """A run of the program on its active version. 409 unless it serves runs; 400 for a bad input or priority."""
    plan = program_check_runnable(program)
    require_json_object(input, "input")
    check_program_input(plan, input)
    check_run_budget(owner=owner, program=program)
    return RunRequest(
        owner=owner, program=program, input=input, priority=check_priority(priority),
        idempotency_key=idempotency_key[:200],
    )


def module_run_request(*, module: Module, owner: AbstractBaseUser, input: Any, context: Any = None) -> RunRequest:
    """One execute of a module. 409 while it is in error; 400 for a bad input or call option."""
    if module.state == ModuleState.ERROR:
        raise Conflict(
            f"cannot execute a module that is in error ({module.error_reason or 'see the admin'}); reset it first",
            {"state": module.state},
        )
    context = check_execute_context(context, module)
    check_record(input, module_signature(module).inputs, what="input")
    check_run_budget(owner=owner)
    return RunRequest(owner=owner, module=module, input=input, context=context)


def batch_run_request(*, program: Program, owner: AbstractBaseUser, inputs: Any, priority: Any = 5) -> BatchRunRequest:
    """Every input is checked: one bad item is a 400 naming it (`inputs[i]…`), and nothing is queued."""
    plan = program_check_runnable(program)
    priority = check_priority(priority)
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput("inputs must be a non-empty list of JSON objects", {"path": "inputs"})
    if len(inputs) > settings.DSPEX_BATCH_MAX:
        raise InvalidInput(
            f"a batch holds at most {settings.DSPEX_BATCH_MAX} inputs, got {len(inputs)}", {"path": "inputs"}
        )
    for index, item in enumerate(inputs):
        require_json_object(item, f"inputs[{index}]")
        try:
            check_program_input(plan, item)
        except InvalidInput as exc:
            found = exc.extra.get("field")
            path = f"inputs[{index}].{found}" if found else f"inputs[{index}]"
            raise InvalidInput(f"inputs[{index}]: {exc.message}", {**exc.extra, "path": path}) from None
    check_run_budget(owner=owner, program=program)
    return BatchRunRequest(program=program, owner=owner, inputs=inputs, priority=priority)


# --------------------------------------------------------------------------- running


def run_now(request: RunRequest) -> Execution:
    """Run in this process under the job core's rules; the row records the outcome (completed or failed)."""
    execution = request.new_row()
    execution.save(force_insert=True)
    return execution_run_inline(execution=execution)


def run_enqueue(request: RunRequest) -> tuple[Execution, bool]:
    """Queue the run. Returns (execution, created); a repeated Idempotency-Key returns the first one."""
    key = request.idempotency_key
    if key:
        existing = Execution.objects.filter(owner=request.owner, idempotency_key=key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            execution = request.new_row(idempotency_key=key, published_at=timezone.now())
            execution.save(force_insert=True)
            publish_on_commit(EXECUTIONS, [execution.pk], priority=request.priority)
    except IntegrityError:
        # A concurrent request with the same key won the insert.
        return Execution.objects.get(owner=request.owner, idempotency_key=key), False
    return execution, True


def batch_enqueue(request: BatchRunRequest) -> Batch:
    """One row per input and the batch, in one transaction; their ids are published on commit."""
    now = timezone.now()
    program = request.program
    with transaction.atomic():
        batch = Batch.objects.create(
            owner=request.owner, program=program, size=len(request.inputs), priority=request.priority
        )
        executions = Execution.objects.bulk_create(
            [
                RunRequest(owner=request.owner, program=program, input=item, priority=request.priority).new_row(
                    batch=batch, published_at=now
                )
                for item in request.inputs
            ]
        )
        publish_on_commit(EXECUTIONS, [execution.pk for execution in executions], priority=request.priority)
    return batch
