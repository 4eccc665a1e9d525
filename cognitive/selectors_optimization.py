"""Reads for optimization runs, scoped like the rest: owners see theirs, staff see all."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from cognitive.models import OptimizationRun
from cognitive.policies import is_staff


def optimization_run_list(*, user: AbstractBaseUser) -> QuerySet[OptimizationRun]:
    queryset = OptimizationRun.objects.select_related("program", "owner")
    return queryset if is_staff(user) else queryset.filter(program__owner=user)
