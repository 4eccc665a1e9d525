"""Mutations: the services REST calls, with the same checks; failures come back in `errors`."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from cognitive import selectors
from cognitive.api.graphql.context import Info
from cognitive.api.graphql.errors import FieldError, found, guarded, throttle
from cognitive.api.graphql.types import (
    Batch,
    Execution,
    ExecutionStatusEnum,
    OptimizationRun,
    Program,
    Signature,
)
from cognitive.errors import ExecutionFailed, InvalidInput
from cognitive.models import Execution as ExecutionRow
from cognitive.models import ExecutionStatus
from cognitive.models import Program as ProgramRow
from cognitive.services import programs, run_requests, signatures
from cognitive.services.batches import batch_counts
from cognitive.services.execution_jobs import execution_cancel
from cognitive.services.optimization_requests import optimization_start
from cognitive.services.versions import program_promote, program_rollback


@strawberry.type
class RunResult:
    execution: strawberry.ID
    status: ExecutionStatusEnum
    output: JSON | None
    trace: JSON
    metrics: JSON
    duration: int | None = strawberry.field(description="milliseconds")
    error: JSON | None


@strawberry.type
class RunProgramPayload:
    result: RunResult | None
    execution: Execution | None = strawberry.field(description="the execution row (poll it when queued)")
    errors: list[FieldError]


@strawberry.type
class RunBatchPayload:
    batch: Batch | None
    errors: list[FieldError]


@strawberry.type
class ExecutionPayload:
    execution: Execution | None
    errors: list[FieldError]


@strawberry.type
class SignaturePayload:
    signature: Signature | None
    errors: list[FieldError]


@strawberry.type
class ProgramPayload:
    program: Program | None
    errors: list[FieldError]


@strawberry.type
class OptimizationPayload:
    optimization_run: OptimizationRun | None
    errors: list[FieldError]


def _program(info: Info, program_id: Any) -> ProgramRow:
    """A program the caller may act on (the selector REST's actions use), or the 404 REST answers."""
    queryset = selectors.program_list(user=info.context.user, with_stats=False)
    return found(selectors.visible_row(queryset, program_id), "program", "programId")


def _result(execution: ExecutionRow) -> RunResult:
    return RunResult(
        execution=strawberry.ID(str(execution.pk)), status=ExecutionStatusEnum(execution.status),
        output=execution.output, trace=execution.trace, metrics=execution.metrics, duration=execution.duration_ms,
        error=execution.error,
    )


def _run_errors(execution: ExecutionRow) -> list[FieldError]:
    """A failed synchronous run, as REST's `run_result` answers it: 400 when the input was at fault, else 422."""
    if execution.status != ExecutionStatus.FAILED:
        return []
    error = dict(execution.error or {})
    bad_input = error.get("type") == "InvalidInput"
    extra = {**(error.get("extra") or {}), "execution": str(execution.pk), "status": execution.status}
    return [
        FieldError(
            field=(error.get("extra") or {}).get("field") or ("input" if bad_input else None),
            message=error.get("message") or "the run failed",
            code=InvalidInput.status_code if bad_input else ExecutionFailed.status_code,
            extra=extra,
        )
    ]


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Run an active program on `input`: now (default), or queued with `queue: true`")
    def run_program(
        self, info: Info, program_id: strawberry.ID, input: JSON,
        queue: bool = False, priority: int = 5, idempotency_key: str = "",
    ) -> RunProgramPayload:
        def act() -> ExecutionRow:
            program = _program(info, program_id)
            throttle(info.context.request, "run")
            run = run_requests.program_run_request(
                program=program, owner=info.context.user, input=input, priority=priority,
                idempotency_key=idempotency_key,
            )
            return run_requests.run_enqueue(run)[0] if queue else run_requests.run_now(run)

        execution, errors = guarded(act, field="input")
        if execution is None:
            return RunProgramPayload(result=None, execution=None, errors=errors)
        return RunProgramPayload(result=_result(execution), execution=execution, errors=_run_errors(execution))

    @strawberry.mutation(description="Queue one run per input, checked whole: one bad item queues nothing")
    def run_batch(
        self, info: Info, program_id: strawberry.ID, inputs: list[JSON], priority: int = 5
    ) -> RunBatchPayload:
        def act() -> Batch:
            program = _program(info, program_id)
            throttle(info.context.request, "run-batch")
            request = run_requests.batch_run_request(
                program=program, owner=info.context.user, inputs=inputs, priority=priority
            )
            batch = run_requests.batch_enqueue(request)
            return Batch(
                id=strawberry.ID(str(batch.pk)), size=batch.size, priority=batch.priority, counts=batch_counts(batch),
                created_at=batch.created_at,
            )

        batch, errors = guarded(act, field="inputs")
        return RunBatchPayload(batch=batch, errors=errors)

    @strawberry.mutation(description="A pending execution never runs; a running one stops at its next step")
    def cancel_execution(self, info: Info, id: strawberry.ID) -> ExecutionPayload:
        def act() -> ExecutionRow:
            row = selectors.visible_row(selectors.execution_list(user=info.context.user), id)
            return execution_cancel(execution=found(row, "execution", "id"))

        execution, errors = guarded(act)
        return ExecutionPayload(execution=execution, errors=errors)

    @strawberry.mutation(description="Parse and save a signature; a bad spec's error carries its `position`")
    def create_signature(
        self, info: Info, name: str, spec: str, instructions: str = "", descriptions: JSON | None = None,
        metadata: JSON | None = None,
    ) -> SignaturePayload:
        signature, errors = guarded(
            lambda: signatures.signature_create(
                owner=info.context.user, name=name, spec=spec, instructions=instructions, descriptions=descriptions,
                metadata=metadata,
            ),
            field="spec",
        )
        if signature is not None:
            signature = selectors.signature_list(user=info.context.user).get(pk=signature.pk)
        return SignaturePayload(signature=signature, errors=errors)

    @strawberry.mutation(description="Create a program from a pipeline; an error names its JSON `path`")
    def compose_program(
        self, info: Info, name: str, pipeline: JSON | None = None, description: str = "", variables: JSON | None = None,
    ) -> ProgramPayload:
        program, errors = guarded(
            lambda: programs.program_create(
                owner=info.context.user, name=name, description=description, pipeline=pipeline, variables=variables
            ),
            field="pipeline",
        )
        return ProgramPayload(program=program, errors=errors)

    @strawberry.mutation
    def activate_program(self, info: Info, id: strawberry.ID) -> ProgramPayload:
        program, errors = guarded(lambda: programs.program_activate(program=_program(info, id)))
        return ProgramPayload(program=program, errors=errors)

    @strawberry.mutation(description="Archive a program; non-staff no longer see it afterwards")
    def archive_program(self, info: Info, id: strawberry.ID) -> ProgramPayload:
        program, errors = guarded(lambda: programs.program_archive(program=_program(info, id)))
        return ProgramPayload(program=program, errors=errors)

    @strawberry.mutation(description="Queue an optimization of an active program (409 in `errors` otherwise)")
    def optimize_program(
        self, info: Info, program_id: strawberry.ID, optimizer: str, dataset: strawberry.ID, metric: str,
        config: JSON | None = None, metric_config: JSON | None = None, budget: JSON | None = None,
    ) -> OptimizationPayload:
        def act() -> Any:
            program = _program(info, program_id)
            throttle(info.context.request, "optimize")
            rows = selectors.dataset_list(user=info.context.user)
            chosen = selectors.visible_row(rows, dataset)
            if chosen is None:
                raise InvalidInput("dataset: not one of your datasets", {"field": "dataset"})
            return optimization_start(
                program=program, owner=info.context.user,
                optimizer=selectors.optimizer_named(user=info.context.user, name=optimizer), dataset=chosen,
                metric=metric, config=config if config is not None else {}, metric_config=metric_config or {},
                budget=budget if budget is not None else {},
            )

        run, errors = guarded(act)
        return OptimizationPayload(optimization_run=run, errors=errors)

    @strawberry.mutation(description="Make one of the program's versions the active one")
    def promote_version(self, info: Info, program_id: strawberry.ID, version_id: strawberry.ID) -> ProgramPayload:
        def act() -> ProgramRow:
            program = _program(info, program_id)
            version = selectors.program_version_of(program, version_id)
            return program_promote(program=program, version=version, actor=info.context.user)

        program, errors = guarded(act)
        return ProgramPayload(program=program, errors=errors)

    @strawberry.mutation(description="Return to the version active before the current one")
    def rollback_program(self, info: Info, program_id: strawberry.ID) -> ProgramPayload:
        program, errors = guarded(
            lambda: program_rollback(program=_program(info, program_id), actor=info.context.user)
        )
        return ProgramPayload(program=program, errors=errors)
