"""Admin for runs: batches with their progress, top-level executions by default, steps in pipeline order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from cognitive.models import Batch
from cognitive.selectors_runs import (
    annotated_counts,
    batch_progress,
    batch_status,
    steps_in_pipeline_order,
    with_batch_counts,
)


class ExecutionLevelFilter(admin.SimpleListFilter):
    """Top-level runs unless asked otherwise: each run's steps are on its own page."""

    title = "level"
    parameter_name = "level"
    default = "top"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("top", "top-level runs"), ("steps", "pipeline steps"), ("all", "everything")]

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        # A link to one run's steps (`?parent__id__exact=`) means steps, whatever the default.
        asks_for_steps = any(key.startswith("parent") for key in request.GET)
        self.chosen = self.value() or ("all" if asks_for_steps else self.default)

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.chosen == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.chosen == "top":
            return queryset.filter(parent__isnull=True)
        if self.chosen == "steps":
            return queryset.filter(parent__isnull=False)
        return queryset


class StepsInPipelineOrder(BaseInlineFormSet):
    """A run's step rows per attempt in the order its pipeline declares them, not the order they finished."""

    def get_queryset(self) -> Any:
        if not hasattr(self, "_steps"):
            self._steps = steps_in_pipeline_order(self.instance, super().get_queryset())
        return self._steps


def _counts(batch: Batch) -> dict[str, int]:
    counts = annotated_counts(batch)
    assert counts is not None, "the admin's queryset annotates the counts"
    return counts


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    """A batch is a record of a request: nothing to edit; its runs are one click away."""

    list_display = ["short_id", "program", "owner", "size", "progress_bar", "status", "created_at"]
    list_select_related = ["program", "owner"]
    list_filter = ["program"]
    date_hierarchy = "created_at"
    fields = ["program", "owner", "size", "priority", "status", "progress_bar", "counts", "runs", "created_at"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> Any:
        return with_batch_counts(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="id")
    def short_id(self, obj: Batch) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="progress")
    def progress_bar(self, obj: Batch) -> SafeString:
        done, fraction = batch_progress(_counts(obj), obj.size)
        return format_html(
            "<progress value='{}' max='{}' style='width:8em'></progress> {}/{} ({}%)",
            done, obj.size or 1, done, obj.size, round(fraction * 100),
        )

    @admin.display(description="status")
    def status(self, obj: Batch) -> str:
        return batch_status(_counts(obj)).replace("_", " ")

    @admin.display(description="executions per status")
    def counts(self, obj: Batch) -> str:
        return ", ".join(f"{status} {n}" for status, n in _counts(obj).items() if n) or "none"

    @admin.display(description="executions")
    def runs(self, obj: Batch) -> SafeString:
        url = reverse("admin:cognitive_execution_changelist") + f"?batch__id__exact={obj.pk}"
        return format_html("<a href='{}'>the batch's {} executions</a>", url, obj.size)
