"""Reads and calculations: querysets scoped to a user, annotated with the original design's metrics."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Avg, Count, FloatField, Q, QuerySet
from django.db.models.functions import Cast, NullIf

from cognitive.models import (
    Batch,
    Execution,
    ExecutionStatus,
    LanguageModel,
    Module,
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


def _with_execution_stats(queryset: QuerySet) -> QuerySet:
    """`success_rate` over finished executions, `avg_latency` in ms, and `executing` now in flight."""
    finished = Q(executions__status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED])
    completed = Count("executions", filter=Q(executions__status=ExecutionStatus.COMPLETED))
    return queryset.annotate(
        executing=Count("executions", filter=Q(executions__status=ExecutionStatus.RUNNING)),
        finished_count=Count("executions", filter=finished),
        completed_count=completed,
        avg_latency=Avg("executions__duration_ms", filter=Q(executions__status=ExecutionStatus.COMPLETED)),
    ).annotate(
        success_rate=Cast("completed_count", FloatField()) / NullIf(Cast("finished_count", FloatField()), 0.0),
    )


def signature_list(*, user: AbstractBaseUser) -> QuerySet[Signature]:
    return _owned(Signature.objects.select_related("owner"), user).annotate(module_count=Count("modules"))


def signature_complexity_of(signature: Signature) -> int:
    return signature_complexity(list(signature.input_fields) + list(signature.output_fields))


def lm_list() -> QuerySet[LanguageModel]:
    return LanguageModel.objects.all()


def module_list(*, user: AbstractBaseUser) -> QuerySet[Module]:
    return _with_execution_stats(_owned(Module.objects.select_related("signature", "lm", "owner"), user))


def program_list(*, user: AbstractBaseUser) -> QuerySet[Program]:
    queryset = Program.objects.select_related("owner", "active_version")
    if not is_staff(user):
        queryset = queryset.filter(owner=user).exclude(status=ProgramStatus.ARCHIVED)
    return _with_execution_stats(queryset)


def program_with_stats(pk: object) -> Program:
    return _with_execution_stats(Program.objects.select_related("owner", "active_version")).get(pk=pk)


def program_version_list(*, user: AbstractBaseUser) -> QuerySet[ProgramVersion]:
    return ProgramVersion.objects.filter(program__in=program_list(user=user).values("pk")).select_related("program")


def optimizer_list(*, user: AbstractBaseUser) -> QuerySet[Optimizer]:
    return _owned(Optimizer.objects.select_related("owner"), user)


def execution_list(*, user: AbstractBaseUser) -> QuerySet[Execution]:
    return _owned(Execution.objects.select_related("program", "module", "version"), user)


def batch_list(*, user: AbstractBaseUser) -> QuerySet[Batch]:
    return _owned(Batch.objects.select_related("program"), user)
