import django_filters

from cognitive.models import Execution, ExecutionStatus, ProgramVersion


class ExecutionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExecutionStatus.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull", label="only top-level executions")

    class Meta:
        model = Execution
        fields = ["program", "module", "parent", "status", "version"]


class ProgramVersionFilter(django_filters.FilterSet):
    class Meta:
        model = ProgramVersion
        fields = ["program", "source"]
