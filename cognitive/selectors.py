"""Reads and calculations: querysets scoped to a user, annotated with the original design's metrics."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Avg, Count, FloatField, Q, QuerySet
from django.db.models.functions import Cast, NullIf

from cognitive.engine.optimizers import OPTIMIZER_CLASSES, RETIRED_TYPES
from cognitive.errors import InvalidInput
from cognitive.models import (
    Batch,
    Corpus,
    Dataset,
    Document,
    Example,
    Execution,
    ExecutionStatus,
    LanguageModel,
    LMAvailability,
    Module,
    OptimizationRun,
    Optimizer,
    Program,
    ProgramVersion,
    Signature,
)
from cognitive.policies import is_staff, owned, readable_programs
from cognitive.signatures import signature_complexity


def _owned(queryset: QuerySet, user: AbstractBaseUser) -> QuerySet:
    return owned(queryset, user)


def _with_execution_stats(queryset: QuerySet, *, runs_only: bool = False) -> QuerySet:
    """`success_rate` over finished executions, `avg_latency` in ms, and `executing` now in flight.

    `runs_only` counts whole runs, not their steps: a program's step executions (children) carry
    the program too, and would otherwise count as runs of it.
    """
    scope = Q(executions__parent__isnull=True) if runs_only else Q()
    finished = scope & Q(executions__status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED])
    completed = Count("executions", filter=scope & Q(executions__status=ExecutionStatus.COMPLETED))
    return queryset.annotate(
        executing=Count("executions", filter=scope & Q(executions__status=ExecutionStatus.RUNNING)),
        finished_count=Count("executions", filter=finished),
        completed_count=completed,
        avg_latency=Avg(
            "executions__duration_ms", filter=scope & Q(executions__status=ExecutionStatus.COMPLETED)
        ),
    ).annotate(
        success_rate=Cast("completed_count", FloatField()) / NullIf(Cast("finished_count", FloatField()), 0.0),
    )


def signature_list(*, user: AbstractBaseUser) -> QuerySet[Signature]:
    return _owned(Signature.objects.select_related("owner"), user).annotate(module_count=Count("modules"))


def signature_complexity_of(signature: Signature) -> int:
    return signature_complexity(list(signature.input_fields) + list(signature.output_fields))


def lm_list(*, user: AbstractBaseUser) -> QuerySet[LanguageModel]:
    """The LMs a user may name: every one for staff, else those open to everyone or to one of their groups."""
    rows = LanguageModel.objects.all()
    if is_staff(user):
        return rows
    open_to_user = Q(availability=LMAvailability.EVERYONE) | Q(
        availability=LMAvailability.GROUPS, groups__in=user.groups.all()
    )
    return rows.filter(pk__in=LanguageModel.objects.filter(open_to_user).values("pk"))


def lm_by_name(name: str) -> LanguageModel | None:
    return LanguageModel.objects.filter(name=name).first()


def module_list(*, user: AbstractBaseUser, with_stats: bool = True) -> QuerySet[Module]:
    queryset = _owned(Module.objects.select_related("signature", "lm", "owner"), user)
    return _with_execution_stats(queryset) if with_stats else queryset


def program_list(*, user: AbstractBaseUser, with_stats: bool = True) -> QuerySet[Program]:
    """`with_stats=False` for actions: the statistics aggregate over every execution of the program."""
    queryset = readable_programs(Program.objects.select_related("owner", "active_version"), user)
    if with_stats:
        return _with_execution_stats(queryset, runs_only=True)
    # An action such as run/ needs the version's id, not its state (optimized demos can be large).
    return queryset.defer("active_version__state")


def program_with_stats(pk: object) -> Program:
    return _with_execution_stats(Program.objects.select_related("owner", "active_version"), runs_only=True).get(pk=pk)


def program_version_list(*, user: AbstractBaseUser) -> QuerySet[ProgramVersion]:
    return ProgramVersion.objects.filter(program__in=program_list(user=user).values("pk")).select_related("program")


def optimizer_list(*, user: AbstractBaseUser) -> QuerySet[Optimizer]:
    return _owned(Optimizer.objects.select_related("owner"), user)


def execution_list(*, user: AbstractBaseUser) -> QuerySet[Execution]:
    return _owned(Execution.objects.select_related("program", "module", "version"), user)


def batch_list(*, user: AbstractBaseUser) -> QuerySet[Batch]:
    return _owned(Batch.objects.select_related("program"), user)


def corpus_list(*, user: AbstractBaseUser) -> QuerySet[Corpus]:
    return _owned(Corpus.objects.select_related("owner", "embedding_lm"), user).annotate(
        document_count=Count("documents"),
        pending_embeddings=Count("documents", filter=Q(documents__embedding__isnull=True)),
    )


def corpus_by_name(*, owner: AbstractBaseUser, name: str) -> Corpus | None:
    """The owner's corpus called `name` (pipelines refer to corpora by name), with `document_count`."""
    queryset = Corpus.objects.filter(owner=owner, name=name).select_related("embedding_lm")
    return queryset.annotate(document_count=Count("documents")).first()


def document_list(*, corpus: Corpus) -> QuerySet[Document]:
    return Document.objects.filter(corpus=corpus).order_by("position")


def dataset_list(*, user: AbstractBaseUser) -> QuerySet[Dataset]:
    """Datasets with `example_count`, `train_count` and `val_count`."""
    return _owned(Dataset.objects.select_related("owner", "program"), user).annotate(
        example_count=Count("examples"),
        train_count=Count("examples", filter=Q(examples__split="train")),
        val_count=Count("examples", filter=Q(examples__split="val")),
    )


def example_list(*, dataset: Dataset, split: str | None = None, source: str | None = None) -> QuerySet[Example]:
    queryset = Example.objects.filter(dataset=dataset).order_by("created_at", "id")
    if split:
        queryset = queryset.filter(split=split)
    if source:
        queryset = queryset.filter(source=source)
    return queryset


def optimization_run_list(*, user: AbstractBaseUser) -> QuerySet[OptimizationRun]:
    queryset = OptimizationRun.objects.select_related("program", "owner")
    return queryset if is_staff(user) else queryset.filter(program__owner=user)


def visible_row(queryset: QuerySet, pk: object) -> Any:
    """The row with this id if the (user-scoped) queryset holds it, else None: a malformed id is just absent."""
    try:
        return queryset.filter(pk=uuid.UUID(str(pk))).first()
    except ValueError:
        return None


def pipeline_module_names(pipeline: Any) -> list[str]:
    """The module names a pipeline spec's steps refer to (parallel groups and compensations included), in order."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            name = node.get("module")
            if isinstance(name, str) and name not in found:
                found.append(name)
            for key in ("steps", "parallel", "on_error", "compensate"):
                walk(node.get(key))

    walk(pipeline)
    return found


def modules_of_programs(programs: list[Program]) -> dict[Any, list[Module]]:
    """Each program's modules (by program id), in pipeline order, in one query.

    A pipeline names modules of the program's owner, so the names resolve against that owner.
    """
    wanted = {program.pk: pipeline_module_names(program.pipeline) for program in programs}
    match = Q(pk__in=[])
    for program in programs:
        if wanted[program.pk]:
            match |= Q(owner_id=program.owner_id, name__in=wanted[program.pk])
    by_owner_name = {(module.owner_id, module.name): module for module in Module.objects.filter(match)}
    return {
        program.pk: [
            by_owner_name[(program.owner_id, name)] for name in wanted[program.pk]
            if (program.owner_id, name) in by_owner_name
        ]
        for program in programs
    }


def module_performance(module_ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """The original design's module metrics, by module id, over each module's recent executions.

    `success_rate` and `avg_latency` (ms, completed ones) cover the module's last
    `DSPEX_METRICS_WINDOW` finished executions (`finished` says how many there were); `executing`
    counts the ones running now. Each window is read newest first along the (module, status,
    created_at) index, so the cost does not grow with the module's history: two queries for
    any number of modules.
    """
    if not module_ids:
        return {}
    window = settings.DSPEX_METRICS_WINDOW
    table = connection.ops.quote_name(Execution._meta.db_table)
    module_field = Execution._meta.get_field("module")
    # Only the model's own table name is formatted in; every value is a parameter.
    branches, params = [], []
    for module_id in module_ids:
        key = module_field.get_db_prep_value(module_id, connection)
        for status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
            branches.append(
                f"SELECT * FROM (SELECT module_id, status, duration_ms, created_at FROM {table}"  # noqa: S608
                " WHERE module_id = %s AND status = %s ORDER BY created_at DESC LIMIT %s) AS newest"
            )
            params += [key, str(status), window]
    sql = (
        "SELECT module_id, COUNT(*), SUM(CASE WHEN status = %s THEN 1 ELSE 0 END),"  # noqa: S608
        " AVG(CASE WHEN status = %s THEN duration_ms END) FROM ("
        " SELECT module_id, status, duration_ms,"
        " ROW_NUMBER() OVER (PARTITION BY module_id ORDER BY created_at DESC) AS place"
        f" FROM ({' UNION ALL '.join(branches)}) AS recent) AS ranked WHERE place <= %s GROUP BY module_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [str(ExecutionStatus.COMPLETED), str(ExecutionStatus.COMPLETED), *params, window])
        finished = {
            module_field.to_python(row[0]): (row[1], row[2], row[3]) for row in cursor.fetchall()
        }
    running = dict(
        Execution.objects.filter(module_id__in=module_ids, status=ExecutionStatus.RUNNING)
        .values("module_id").annotate(n=Count("pk")).values_list("module_id", "n")
    )
    found = {}
    for module_id in module_ids:
        count, completed, latency = finished.get(module_id, (0, 0, None))
        found[module_id] = {
            "executing": running.get(module_id, 0),
            "success_rate": completed / count if count else None,
            "avg_latency": float(latency) if latency is not None else None,
            "finished": count,
            "window": window,
        }
    return found


def program_runs(program: Program) -> QuerySet[Execution]:
    """A program's runs (top-level executions; their steps carry the program too)."""
    return Execution.objects.filter(program=program, parent__isnull=True)


def program_stats(program_ids: list[Any]) -> dict[Any, Program]:
    """Programs annotated with their run statistics, by id, in one query."""
    return {program.pk: program for program in program_with_stats_list(program_ids)}


def program_with_stats_list(program_ids: list[Any]) -> QuerySet[Program]:
    return _with_execution_stats(Program.objects.filter(pk__in=program_ids), runs_only=True)


def children_of_executions(parent_ids: list[Any]) -> dict[Any, list[Execution]]:
    """The step executions of these executions, by parent id, in the order they started."""
    found: dict[Any, list[Execution]] = {pk: [] for pk in parent_ids}
    for child in Execution.objects.filter(parent_id__in=parent_ids).order_by("created_at", "id"):
        found[child.parent_id].append(child)
    return found


def execution_lm_calls(execution: Execution) -> list[dict[str, Any]]:
    return [event for event in execution.trace or [] if isinstance(event, dict) and event.get("type") == "lm_call"]


def program_version_of(program: Program, version_id: Any) -> ProgramVersion:
    """One of the program's versions; InvalidInput naming `version` when it is not one."""
    version = visible_row(ProgramVersion.objects.filter(program=program), version_id)
    if version is None:
        raise InvalidInput("version: not a version of this program", {"field": "version"})
    return version


def optimizer_named(*, user: AbstractBaseUser, name: str) -> str | Optimizer:
    """An optimizer type name as given, or the user's saved optimizer of that name."""
    if name in OPTIMIZER_CLASSES or name in RETIRED_TYPES:
        return name
    saved = optimizer_list(user=user).filter(name=name).first()
    return saved if saved is not None else name
