"""Running programs and modules: what the job layer calls for a claimed Execution, and the sync API path.

`execution_perform` never changes the top-level row's status: the job layer owns that
(complete, retry, snooze or fail). It writes one child Execution per pipeline step as the
steps finish, each with its LM calls in `trace`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections

from cognitive.engine.modules import validate_module_config
from cognitive.engine.pipeline import PipelineEnv, StepRun, pipeline_metrics, run_module_once, run_pipeline
from cognitive.engine.plan import PipelinePlan
from cognitive.engine.runner import PreparedModule
from cognitive.engine.validation import check_program_input
from cognitive.engine.values import check_record
from cognitive.errors import Conflict, ExecutionFailed, InvalidInput
from cognitive.models import (
    Execution,
    ExecutionStatus,
    LanguageModel,
    Module,
    ModuleState,
    Program,
)
from cognitive.policies import RUNNABLE_PROGRAM_STATUSES
from cognitive.services.lm_access import check_call_lm
from cognitive.services.pipelines import module_signature, prepare_module_row
from cognitive.services.row_updates import insert_row
from cognitive.services.run_kits import CompiledPlan, compiled_plan, prepared_modules


@dataclass
class RunResult:
    output: Any
    trace: list[dict[str, Any]]
    metrics: dict[str, Any]
    duration_ms: int


# --------------------------------------------------------------------------- the job layer's entry point


def execution_perform(
    *, execution: Execution, should_stop: Callable[[], bool] = lambda: False, kits: dict[Any, Any] | None = None
) -> RunResult:
    """Run a claimed (`running`) execution: a program run, or a single module execute.

    `should_stop` is asked between pipeline stages; the claim itself guarantees the run was
    not cancelled before the first one. Runs handed the same `kits` dict share one read of their
    program, its modules and its version.
    """
    started = time.perf_counter()
    if execution.program_id is not None:
        output, trace, metrics = _perform_program(execution, should_stop, {} if kits is None else kits)
    elif execution.module_id is not None:
        output, trace, metrics = _perform_module(execution)
    else:
        raise ExecutionFailed("the execution names neither a program nor a module", {"type": "InvalidExecution"})
    return RunResult(output=output, trace=trace, metrics=metrics, duration_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _perform_program(
    execution: Execution, should_stop: Callable[[], bool], kits: dict[Any, Any]
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    key = (execution.program_id, execution.version_id)
    if key not in kits:
        program = execution.program
        assert program is not None
        version_id = execution.version_id or program.active_version_id
        kits[key] = (program, version_id, *_program_kit(program, version_id))
    program, version_id, compiled, prepared = kits[key]
    program_input = check_program_input(compiled.plan, execution.input)
    children = _ChildWriter(execution, compiled.rows, version_id)
    env = PipelineEnv(
        modules=prepared,
        on_step=children.write,
        should_stop=should_stop,
        retrieve=_retriever(program.owner_id),
        # Worker threads open their own database connections (retrieval reads documents).
        thread_exit=connections.close_all,
    )
    try:
        result = run_pipeline(compiled.plan, program_input, env)
    except BaseException:
        children.save_partial_trace()
        raise
    return result.output, children.summaries, result.metrics


def _program_kit(program: Program, version_id: Any) -> tuple[CompiledPlan, Mapping[str, PreparedModule]]:
    if not program.pipeline:
        raise ExecutionFailed("the program has no pipeline steps", {"type": "EmptyPipeline"})
    try:
        compiled = compiled_plan(program)
    except InvalidInput as exc:
        raise ExecutionFailed(
            f"the program's pipeline is no longer valid: {exc.message}", {**exc.extra, "type": "InvalidPipeline"}
        ) from None
    try:
        return compiled, prepared_modules(compiled, version_id=version_id)
    except InvalidInput as exc:
        extra = {**exc.extra, "type": "InvalidState"}
        raise ExecutionFailed(f"cannot load the program: {exc.message}", extra) from None


def _retriever(owner: Any) -> Callable[..., list[str]]:
    """`owner` is a user or a user id."""
    from cognitive.engine.retrieval import retrieve

    def run(*, corpus: str, method: str, query: str, k: int) -> list[str]:
        return retrieve(owner=owner, corpus=corpus, method=method, query=query, k=k)

    return run


class _ChildWriter:
    """Stores each finished step as a child execution (called on the thread that runs the pipeline)."""

    def __init__(self, parent: Execution, modules: Mapping[str, Module], version_id: Any) -> None:
        self.parent = parent
        self.modules = modules
        self.version_id = version_id  # the one whose state the steps ran with
        self.runs: list[StepRun] = []
        self.summaries: list[dict[str, Any]] = []

    def write(self, run: StepRun) -> None:
        parent = self.parent
        error = None if run.error is None else {**run.error, "recovered_by": run.recovered_by}
        child = Execution(
            owner_id=parent.owner_id,
            parent=parent,
            program_id=parent.program_id,
            version_id=self.version_id,
            module=self.modules.get(run.step.module or ""),
            step_id=run.step.id,
            input=run.input,
            output=run.output,
            trace=run.trace,
            metrics={
                **run.metrics,
                "kind": run.step.kind,
                "recovered_by": run.recovered_by,
                "stands_in_for": run.stands_in_for,
            },
            duration_ms=run.duration_ms,
            status=ExecutionStatus.COMPLETED if run.status == "completed" else ExecutionStatus.FAILED,
            error=error,
            attempt=parent.attempt,
            max_attempts=1,
            started_at=run.started_at,
            finished_at=run.started_at + timedelta(milliseconds=run.duration_ms),
        )
        insert_row(child)
        self.runs.append(run)
        self.summaries.append({**run.summary(), "execution": str(child.pk)})

    def save_partial_trace(self) -> None:
        """A failed run keeps the steps it got through; only while this attempt still holds the claim."""
        Execution.objects.filter(
            pk=self.parent.pk, status=ExecutionStatus.RUNNING, attempt=self.parent.attempt
        ).update(trace=self.summaries, metrics=pipeline_metrics(self.runs))


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


def _perform_module(execution: Execution) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    module = Module.objects.select_related("signature", "lm").get(pk=execution.module_id)
    context = check_execute_context(execution.context, module)
    inputs = check_record(execution.input, module_signature(module).inputs, what="input")
    lm = LanguageModel.objects.get(name=context["lm"]) if "lm" in context else None
    options = {k: v for k, v in context.items() if k != "lm"}
    prepared = prepare_module_row(module, config={**module.config, **options}, lm=lm)
    run = run_module_once(prepared, inputs, step_id=module.name, module_name=module.name)
    if run.failure is not None:
        raise run.failure
    return run.output, run.trace, run.metrics


# --------------------------------------------------------------------------- the synchronous API path


def _run_inline(execution: Execution) -> Execution:
    from cognitive.services.jobs import execution_run_inline

    return execution_run_inline(execution=execution)


def module_execute(
    *, module: Module, owner: AbstractBaseUser, input: Any, context: Any = None
) -> Execution:
    """Run one module now. The input is checked before any LM call (400 naming the field)."""
    if module.state == ModuleState.ERROR:
        raise Conflict(
            f"cannot execute a module that is in error ({module.error_reason or 'see the admin'}); reset it first",
            {"state": module.state},
        )
    context = check_execute_context(context, module)
    check_record(input, module_signature(module).inputs, what="input")
    execution = Execution.objects.create(
        owner=owner, module=module, input=input, context=context, max_attempts=settings.DSPEX_MAX_ATTEMPTS
    )
    return _run_inline(execution)


def program_require_runnable(program: Program) -> None:
    """Conflict (409) unless the program is in a status that serves runs."""
    if program.status not in RUNNABLE_PROGRAM_STATUSES:
        raise Conflict(f"only an active program can run; this one is {program.status}", {"state": program.status})


def program_check_runnable(program: Program) -> PipelinePlan:
    """An active program with a pipeline that still compiles; Conflict (409) otherwise."""
    program_require_runnable(program)
    if not program.pipeline:
        raise Conflict("the program has no pipeline steps yet", {"state": program.status})
    try:
        return compiled_plan(program).plan
    except InvalidInput as exc:
        raise Conflict(f"the program's pipeline is no longer valid: {exc.message}", exc.extra) from None


def program_run(*, program: Program, owner: AbstractBaseUser, input: Any) -> Execution:
    """Run a program now, on its active version. Bad input is a 400 before any LM call."""
    plan = program_check_runnable(program)
    check_program_input(plan, input)
    execution = Execution.objects.create(
        owner=owner,
        program=program,
        version_id=program.active_version_id,
        input=input,
        max_attempts=settings.DSPEX_MAX_ATTEMPTS,
    )
    return _run_inline(execution)


def run_response(execution: Execution) -> dict[str, Any]:
    """What a synchronous run answers: raises the recorded failure as the matching domain error."""
    body = {"execution": str(execution.pk), "status": execution.status, "output": execution.output}
    if execution.status == ExecutionStatus.COMPLETED:
        return body
    error = dict(execution.error or {})
    if execution.status == ExecutionStatus.FAILED:
        extra = {**(error.get("extra") or {}), "execution": str(execution.pk), "status": execution.status,
                 "error": error}
        message = error.get("message") or "the run failed"
        if error.get("type") == "InvalidInput":
            raise InvalidInput(message, extra)
        raise ExecutionFailed(message, extra)
    return {**body, "error": error or None}


def program_submit(
    *, program: Program, owner: AbstractBaseUser, input: Any, wait: bool, priority: int = 5,
    idempotency_key: str = "",
) -> tuple[Execution, bool]:
    """`POST /api/programs/{id}/run/`: run now (`wait`) or queue. Returns (execution, queued)."""
    if wait:
        return program_run(program=program, owner=owner, input=input), False
    from cognitive.services.submissions import program_run_enqueue

    # Checked here too, so a queued run with a bad input is a 400 now rather than a failed job later.
    check_program_input(program_check_runnable(program), input)
    execution, _ = program_run_enqueue(
        program=program, owner=owner, input=input, priority=priority, idempotency_key=idempotency_key
    )
    return execution, True
