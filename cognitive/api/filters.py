"""Filters for list endpoints.

A filter on a related row (`?program=`, `?module=`, `?signature=`...) takes any UUID and simply
matches nothing when the row is not the user's: another user's id and an id that exists nowhere
answer alike (200, empty), so a filter cannot tell whether an id exists. django-filter's default,
a choice among *all* rows, answered 400 for a random id and 200 for someone else's.
"""

import django_filters
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework import FilterSet as RestFilterSet

from cognitive.models import Execution, ExecutionStatus, ProgramVersion

_RELATION = {"filter_class": django_filters.UUIDFilter}


class OwnedFilterSet(RestFilterSet):
    FILTER_DEFAULTS = {
        **RestFilterSet.FILTER_DEFAULTS,
        models.ForeignKey: _RELATION,
        models.OneToOneField: _RELATION,
    }


class FilterBackend(DjangoFilterBackend):
    """The project's filter backend: `filterset_fields` build an OwnedFilterSet."""

    filterset_base = OwnedFilterSet


class ExecutionFilter(OwnedFilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull", label="only top-level executions")

    class Meta:
        model = Execution
        fields = ["program", "module", "parent", "status", "version"]


class ProgramVersionFilter(OwnedFilterSet):
    class Meta:
        model = ProgramVersion
        fields = ["program", "source"]
