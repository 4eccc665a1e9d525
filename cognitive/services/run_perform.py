"""Performing a claimed run (the worker side): a program's pipeline, or one module's execute.

`execution_perform` never changes the top-level row's status: the job core owns that
(complete, retry, snooze or fail). It writes one child Execution per pipeline step as the
steps finish, each with its LM calls in `trace`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections

from cognitive.engine.pipeline import PipelineEnv, StepRun, pipeline_metrics, run_module_once, run_pipeline
from cognitive.engine.runner import PreparedModule
from cognitive.engine.validation import check_program_input
from cognitive.engine.values import check_record
from cognitive.errors import ExecutionFailed, InvalidInput
from cognitive.models import Execution, ExecutionStatus, LanguageModel, Module, Program
from cognitive.services.pipelines import module_signature, prepare_module_row
from cognitive.services.program_cache import CompiledPlan, compiled_plan, prepared_modules
from cognitive.services.retrieval import corpus_retriever
from cognitive.services.row_updates import insert_row
from cognitive.telemetry import recorder, spans


@dataclass
class RunResult:
    output: Any
    trace: list[dict[str, Any]]
    metrics: dict[str, Any]
    duration_ms: int



def execution_perform(
    *, execution: Execution, should_stop: Callable[[], bool] = lambda: False, loaded: dict[Any, Any] | None = None
) -> RunResult:
    """Run a claimed (`running`) execution: a program run, or a single module execute.

    `should_stop` is asked between pipeline stages and before every LM call (which then raises
    `RunStopped`); the claim itself guarantees the run was not cancelled before the first one.
    Runs handed the same `loaded` dict share one read of their program, its modules and its version.
    """
    started = time.perf_counter()
    if execution.program_id is not None:
        output, trace, metrics = _perform_program(execution, should_stop, {} if loaded is None else loaded)
    elif execution.module_id is not None:
        output, trace, metrics = _perform_module(execution, should_stop)
    else:
        raise ExecutionFailed("the execution names neither a program nor a module", {"type": "InvalidExecution"})
    return RunResult(output=output, trace=trace, metrics=metrics, duration_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _perform_program(
    execution: Execution, should_stop: Callable[[], bool], loaded: dict[Any, Any]
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    key = (execution.program_id, execution.version_id)
    if key not in loaded:
        program = execution.program
        assert program is not None
        version_id = execution.version_id or program.active_version_id
        loaded[key] = (program, version_id, *_load_program(program, version_id))
    program, version_id, compiled, prepared = loaded[key]
    program_input = check_program_input(compiled.plan, execution.input)
    children = _ChildWriter(execution, compiled.rows, version_id)
    env = PipelineEnv(
        modules=prepared,
        on_step=children.write,
        should_stop=should_stop,
        retrieve=corpus_retriever(program.owner_id),
        # Worker threads open their own database connections (retrieval reads documents).
        thread_exit=connections.close_all,
        step_scope=spans.step_scope_factory(),
    )
    try:
        result = run_pipeline(compiled.plan, program_input, env)
    except BaseException:
        children.save_partial_trace()
        raise
    return result.output, children.summaries, result.metrics


def _load_program(program: Program, version_id: Any) -> tuple[CompiledPlan, Mapping[str, PreparedModule]]:
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
        if child.module is not None:
            recorder.module_executed(
                module=child.module.name, module_type=child.module.type, status=child.status,
                duration_ms=run.duration_ms,
            )
        self.runs.append(run)
        self.summaries.append({**run.summary(), "execution": str(child.pk)})

    def save_partial_trace(self) -> None:
        """A failed run keeps the steps it got through; only while this attempt still holds the claim."""
        Execution.objects.filter(
            pk=self.parent.pk, status=ExecutionStatus.RUNNING, attempt=self.parent.attempt
        ).update(trace=self.summaries, metrics=pipeline_metrics(self.runs))


def _perform_module(
    execution: Execution, should_stop: Callable[[], bool]
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """The row's input and call options were checked when it was requested (`run_requests`)."""
    module = Module.objects.select_related("signature", "lm").get(pk=execution.module_id)
    context = execution.context or {}
    inputs = check_record(execution.input, module_signature(module).inputs, what="input")
    lm = LanguageModel.objects.get(name=context["lm"]) if "lm" in context else None
    options = {k: v for k, v in context.items() if k != "lm"}
    prepared = prepare_module_row(module, config={**module.config, **options}, lm=lm)
    run = run_module_once(prepared, inputs, step_id=module.name, module_name=module.name, should_stop=should_stop)
    recorder.module_executed(
        module=module.name, module_type=module.type, status=run.status, duration_ms=run.duration_ms
    )
    if run.failure is not None:
        raise run.failure
    return run.output, run.trace, run.metrics
