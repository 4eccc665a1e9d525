"""Object types: the models as the API shows them (the same fields REST serializes, in camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
import strawberry_django
from django.db.models import QuerySet
from strawberry import auto
from strawberry.scalars import JSON

from cognitive import models, selectors
from cognitive.api.graphql.context import Info
from cognitive.api.graphql.pagination import Connection, paginate
from cognitive.errors import InvalidInput


@strawberry.enum(name="ExecutionStatus")
class ExecutionStatusEnum(Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.enum(name="ProgramStatus")
class ProgramStatusEnum(Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    OPTIMIZING = "optimizing"
    ARCHIVED = "archived"


def _id(value: Any) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry_django.type(models.Signature)
class Signature:
    id: strawberry.ID
    name: auto
    spec: auto
    instructions: auto
    input_fields: JSON
    output_fields: JSON
    metadata: JSON
    created_at: auto
    updated_at: auto

    @strawberry.field
    def complexity(self: models.Signature) -> int:
        return selectors.signature_complexity_of(self)


@strawberry_django.type(models.Module)
class Module:
    id: strawberry.ID
    name: auto
    type: str
    config: JSON
    cache_ttl: auto
    state: str
    error_reason: auto
    created_at: auto

    @strawberry.field
    def signature_id(self: models.Module) -> strawberry.ID:
        return strawberry.ID(str(self.signature_id))

    @strawberry.field(description="success_rate (completed / finished), avg_latency (ms), executing (running now)")
    def performance_metrics(self: models.Module, info: Info) -> JSON:
        return info.context.loaders.module_performance.get(self)


@strawberry_django.type(models.Execution)
class Execution:
    id: strawberry.ID
    input: JSON
    context: JSON
    output: JSON | None
    trace: JSON
    metrics: JSON
    error: JSON | None
    step_id: auto
    priority: auto
    attempt: auto
    max_attempts: auto
    attempts: JSON
    run_after: auto
    created_at: auto
    started_at: auto
    finished_at: auto

    @strawberry.field(description="milliseconds")
    def duration(self: models.Execution) -> int | None:
        return self.duration_ms

    @strawberry.field
    def status(self: models.Execution) -> ExecutionStatusEnum:
        return ExecutionStatusEnum(self.status)

    @strawberry.field
    def program_id(self: models.Execution) -> strawberry.ID | None:
        return _id(self.program_id)

    @strawberry.field
    def version_id(self: models.Execution) -> strawberry.ID | None:
        return _id(self.version_id)

    @strawberry.field
    def module_id(self: models.Execution) -> strawberry.ID | None:
        return _id(self.module_id)

    @strawberry.field
    def batch_id(self: models.Execution) -> strawberry.ID | None:
        return _id(self.batch_id)

    @strawberry.field
    def parent_id(self: models.Execution) -> strawberry.ID | None:
        return _id(self.parent_id)

    @strawberry.field(description="the LM calls this execution made itself (its steps hold their own)")
    def lm_calls(self: models.Execution) -> JSON:
        return selectors.execution_lm_calls(self)

    @strawberry.field(description="its steps, in the order they started; each with its own steps and LM calls")
    def children(self: models.Execution, info: Info) -> list[Execution]:
        return info.context.loaders.executions_seen(info.context.loaders.children.get(self) or [])


@strawberry.input
class ExecutionStatusFilter:
    eq: ExecutionStatusEnum | None = None
    in_: list[ExecutionStatusEnum] | None = strawberry.field(name="in", default=None)


@strawberry.input
class DateTimeRange:
    gte: datetime | None = None
    lt: datetime | None = None


@strawberry.input
class ExecutionFilter:
    status: ExecutionStatusFilter | None = None
    created: DateTimeRange | None = None
    batch: strawberry.ID | None = None
    version: strawberry.ID | None = None
    module: strawberry.ID | None = None
    program: strawberry.ID | None = None
    root: bool | None = strawberry.field(default=None, description="true: only runs, not their steps")


@strawberry.type
class ProgramStats:
    executing: int
    success_rate: float | None
    avg_latency: float | None = strawberry.field(description="ms, completed runs")


def execution_page(
    info: Info, queryset: QuerySet, *, first: int | None, after: str | None, filter: ExecutionFilter | None
) -> Connection[Execution]:
    page = paginate(filtered_executions(queryset, filter), first=first, after=after)
    info.context.loaders.executions_seen([edge.node for edge in page.edges])
    return page


def filtered_executions(queryset: QuerySet, found: ExecutionFilter | None) -> QuerySet:
    if found is None:
        return queryset
    if found.status is not None:
        if found.status.eq is not None:
            queryset = queryset.filter(status=found.status.eq.value)
        if found.status.in_ is not None:
            queryset = queryset.filter(status__in=[status.value for status in found.status.in_])
    if found.created is not None:
        if found.created.gte is not None:
            queryset = queryset.filter(created_at__gte=found.created.gte)
        if found.created.lt is not None:
            queryset = queryset.filter(created_at__lt=found.created.lt)
    for name in ("batch", "version", "module", "program"):
        value = getattr(found, name)
        if value is not None:
            queryset = queryset.filter(**{f"{name}_id": parse_id(value, name)})
    if found.root is not None:
        queryset = queryset.filter(parent__isnull=found.root)
    return queryset


def parse_id(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"filter.{name}: not an id", {"field": f"filter.{name}"}) from None


@strawberry_django.type(models.ProgramVersion)
class ProgramVersion:
    id: strawberry.ID
    number: auto
    source: str
    scores: JSON
    created_at: auto

    @strawberry.field
    def program_id(self: models.ProgramVersion) -> strawberry.ID:
        return strawberry.ID(str(self.program_id))


@strawberry_django.type(models.Program)
class Program:
    id: strawberry.ID
    name: auto
    description: auto
    pipeline: JSON
    variables: JSON
    created_at: auto
    updated_at: auto

    @strawberry.field
    def status(self: models.Program) -> ProgramStatusEnum:
        return ProgramStatusEnum(self.status)

    @strawberry.field
    def active_version_id(self: models.Program) -> strawberry.ID | None:
        return _id(self.active_version_id)

    @strawberry.field(description="the modules its pipeline names, with their performance metrics")
    def modules(self: models.Program, info: Info) -> list[Module]:
        return info.context.loaders.modules_seen(info.context.loaders.modules.get(self) or [])

    @strawberry.field(description="its runs (not their steps), newest first")
    def executions(
        self: models.Program, info: Info, first: int | None = None, after: str | None = None,
        filter: ExecutionFilter | None = None,
    ) -> Connection[Execution]:
        return execution_page(info, selectors.program_runs(self), first=first, after=after, filter=filter)

    @strawberry.field(description="over all its runs; aggregates every run, so ask for it only when needed")
    def stats(self: models.Program, info: Info) -> ProgramStats:
        found = info.context.loaders.stats.get(self)
        return ProgramStats(executing=found.executing, success_rate=found.success_rate, avg_latency=found.avg_latency)


@strawberry_django.type(models.Dataset)
class Dataset:
    id: strawberry.ID
    name: auto
    changed_at: auto
    created_at: auto
    example_count: int
    train_count: int
    val_count: int

    @strawberry.field
    def program_id(self: models.Dataset) -> strawberry.ID:
        return strawberry.ID(str(self.program_id))


@strawberry_django.type(models.OptimizationRun)
class OptimizationRun:
    id: strawberry.ID
    optimizer_type: str
    optimizer_config: JSON
    metric: auto
    metric_config: JSON
    budget: JSON
    status: str
    attempt: auto
    max_attempts: auto
    progress: JSON
    trials: JSON
    baseline_score: auto
    final_score: auto
    promoted: auto
    log: JSON
    error: JSON | None
    created_at: auto
    started_at: auto
    finished_at: auto

    @strawberry.field
    def program_id(self: models.OptimizationRun) -> strawberry.ID:
        return strawberry.ID(str(self.program_id))

    @strawberry.field
    def dataset_id(self: models.OptimizationRun) -> strawberry.ID | None:
        return _id(self.dataset_id)

    @strawberry.field
    def result_version_id(self: models.OptimizationRun) -> strawberry.ID | None:
        return _id(self.result_version_id)


@strawberry.type
class Batch:
    id: strawberry.ID
    size: int
    priority: int
    counts: JSON
    created_at: datetime
