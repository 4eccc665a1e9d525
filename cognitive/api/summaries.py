"""List items without their large fields: the detail route carries them whole.

A page of executions with megabyte inputs was a response of hundreds of megabytes, and the web
worker held all of it in memory. List views load and send a summary instead: the same serializer
without the named fields, which are also deferred so the database does not send them either.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import serializers


@cache
def summary_serializer(serializer_class: type[serializers.ModelSerializer], omit: tuple[str, ...]) -> type:
    """A subclass of `serializer_class` without the fields in `omit` (its own schema component)."""
    parent_meta = serializer_class.Meta

    class Meta(parent_meta):  # type: ignore[valid-type, misc]
        fields = [name for name in parent_meta.fields if name not in omit]
        read_only_fields = [name for name in getattr(parent_meta, "read_only_fields", ()) if name not in omit]

    # A declared field set to None is removed from the subclass (DRF's way to drop an inherited field).
    attrs: dict[str, Any] = {name: None for name in omit if name in serializer_class._declared_fields}
    attrs["Meta"] = Meta
    attrs["__module__"] = serializer_class.__module__
    name = serializer_class.__name__.removesuffix("Serializer") + "SummarySerializer"
    return type(name, (serializer_class,), attrs)


class SummaryListMixin:
    """For a viewset: `list` uses `list_omits`-less items and defers those columns."""

    list_omits: tuple[str, ...] = ()

    def deferred(self, queryset: Any) -> Any:
        model_fields = {field.name for field in queryset.model._meta.concrete_fields}
        return queryset.defer(*[name for name in self.list_omits if name in model_fields])

    def get_serializer_class(self) -> type:
        base = super().get_serializer_class()  # type: ignore[misc]
        return summary_serializer(base, self.list_omits) if getattr(self, "action", None) == "list" else base

    def filter_queryset(self, queryset: Any) -> Any:
        filtered = super().filter_queryset(queryset)  # type: ignore[misc]
        return self.deferred(filtered) if getattr(self, "action", None) == "list" else filtered
