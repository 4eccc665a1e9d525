"""Filters for list endpoints.

A filter on a related row (`?program=`, `?module=`, `?signature=`...) takes any UUID and simply
matches nothing when the row is not the user's: another user's id and an id that exists nowhere
answer alike (200, empty), so a filter cannot tell whether an id exists. django-filter's default,
a choice among *all* rows, answered 400 for a random id and 200 for someone else's.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
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


class _StorableDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time the database can compare with: PostgreSQL refuses UTC offsets of 16 hours or
    more (a 500 before), and a time near year 1 or 9999 may not survive the shift to UTC."""

    def to_python(self, value: object) -> datetime | None:
        try:
            parsed = super().to_python(value)
            offset = parsed.utcoffset() if parsed is not None else None
            if offset is not None and abs(offset) >= timedelta(hours=16):
                raise ValueError("UTC offset out of range")
            return parsed.astimezone(UTC) if offset is not None else parsed
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a valid date/time.", code="invalid") from None


class StorableDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = _StorableDateTimeField


class ExecutionFilter(OwnedFilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    created_after = StorableDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = StorableDateTimeFilter(field_name="created_at", lookup_expr="lt")
    root = django_filters.BooleanFilter(
        method="filter_root", label="true (the default): top-level runs only; false: their step executions too"
    )
    # By id without checking it exists, so another user's batch is an empty list like a missing one.
    batch = django_filters.UUIDFilter(field_name="batch")

    class Meta:
        model = Execution
        fields = ["program", "module", "parent", "status", "version"]

    def filter_root(self, queryset: Any, name: str, value: bool | None) -> Any:
        return queryset.filter(parent__isnull=True) if value else queryset

    def filter_queryset(self, queryset: Any) -> Any:
        # Steps are shown under their parent; asking for a parent's children, or root=false, lists them.
        if "root" not in self.data and "parent" not in self.data:
            queryset = queryset.filter(parent__isnull=True)
        return super().filter_queryset(queryset)


class ProgramVersionFilter(OwnedFilterSet):
    class Meta:
        model = ProgramVersion
        fields = ["program", "source"]
