"""Reads and calculations: querysets scoped to a user, annotated with the original design's metrics."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count, FloatField, Q, QuerySet
from django.db.models.functions import Cast, NullIf

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
    ProgramStatus,
    ProgramVersion,
    Signature,
)
from cognitive.policies import is_staff
from cognitive.signatures import signature_complexity


def _owned(queryset: QuerySet, user: AbstractBaseUser) -> QuerySet:
    return queryset if is_staff(user) else queryset.filter(owner=user)


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
    queryset = Program.objects.select_related("owner", "active_version")
    if not is_staff(user):
        queryset = queryset.filter(owner=user).exclude(status=ProgramStatus.ARCHIVED)
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
