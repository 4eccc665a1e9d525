from typing import Any

import django_filters

from cognitive.models import Execution, ExecutionStatus, ProgramVersion


class ExecutionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
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


class ProgramVersionFilter(django_filters.FilterSet):
    class Meta:
        model = ProgramVersion
        fields = ["program", "source"]
