"""Filters for list endpoints.

A filter on a related row (`?program=`, `?module=`, `?signature=`...) takes any UUID and simply
matches nothing when the row is not the user's: another user's id and an id that exists nowhere
answer alike (200, empty), so a filter cannot tell whether an id exists. django-filter's default,
a choice among *all* rows, answered 400 for a random id and 200 for someone else's.
"""

from datetime import UTC, datetime, timedelta

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
    root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull", label="only top-level executions")

    class Meta:
        model = Execution
        fields = ["program", "module", "parent", "status", "version"]


class ProgramVersionFilter(OwnedFilterSet):
    class Meta:
        model = ProgramVersion
        fields = ["program", "source"]
