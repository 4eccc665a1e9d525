"""Dataset admin: read-only examples, an import form and an export link, both going through the service."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from cognitive.errors import ApplicationError
from cognitive.models import Dataset, Example
from cognitive.services import datasets

INLINE_EXAMPLES = 50


class _FirstExamplesFormSet(BaseInlineFormSet):
    def get_queryset(self) -> Any:
        return super().get_queryset()[:INLINE_EXAMPLES]


class ExampleInline(admin.TabularInline):
    model = Example
    formset = _FirstExamplesFormSet
    fields = ["inputs", "outputs", "split", "source", "score", "execution", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = f"examples (the first {INLINE_EXAMPLES})"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DatasetImportForm(forms.Form):
    file = forms.FileField(help_text="JSONL, CSV (in.<field>, out.<field>, split columns) or a JSON list")
    format = forms.ChoiceField(
        choices=[("", "from the file extension")] + [(f, f) for f in datasets.IMPORT_FORMATS], required=False
    )


_EXTENSIONS = {"jsonl": "jsonl", "ndjson": "jsonl", "csv": "csv", "json": "json"}


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "program", "owner", "example_count", "changed_at", "export_link"]
    list_select_related = ["program", "owner"]
    search_fields = ["name", "program__name"]
    readonly_fields = ["changed_at", "tools", "created_at", "updated_at"]
    inlines = [ExampleInline]

    @admin.display(description="examples")
    def example_count(self, obj: Dataset) -> int:
        return obj.examples.count()

    @admin.display(description="export")
    def export_link(self, obj: Dataset) -> str:
        return format_html('<a href="{}">JSONL</a>', reverse("admin:cognitive_dataset_export", args=[obj.pk]))

    @admin.display(description="import / export")
    def tools(self, obj: Dataset) -> str:
        if obj.pk is None:
            return "save the dataset first"
        links = [
            (reverse("admin:cognitive_dataset_import", args=[obj.pk]), "Import examples"),
            (reverse("admin:cognitive_dataset_export", args=[obj.pk]), "Export as JSONL"),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def get_urls(self) -> list[Any]:
        own = [
            path("<uuid:pk>/import/", self.admin_site.admin_view(self.import_view), name="cognitive_dataset_import"),
            path("<uuid:pk>/export/", self.admin_site.admin_view(self.export_view), name="cognitive_dataset_export"),
        ]
        return own + super().get_urls()

    def _dataset(self, request: HttpRequest, pk: Any, *, change: bool) -> Dataset:
        dataset = get_object_or_404(Dataset, pk=pk)
        allowed = self.has_change_permission(request, dataset) if change else self.has_view_permission(request, dataset)
        if not allowed:
            raise PermissionDenied
        return dataset

    def export_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        dataset = self._dataset(request, pk, change=False)
        response = HttpResponse(datasets.dataset_export_jsonl(dataset), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}.jsonl"'
        return response

    def import_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        dataset = self._dataset(request, pk, change=True)
        form = DatasetImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            format = form.cleaned_data["format"] or _EXTENSIONS.get(upload.name.rsplit(".", 1)[-1].lower(), "")
            try:
                if upload.size > datasets.MAX_IMPORT_BYTES:
                    raise ApplicationError(f"the file is larger than {datasets.MAX_IMPORT_BYTES} bytes")
                imported = datasets.dataset_import(dataset=dataset, content=upload.read(), format=format)
            except ApplicationError as exc:
                lines = [f"line {e['line']}: {e['message']}" for e in exc.extra.get("errors", [])[:20]]
                self.message_user(request, "; ".join([exc.message, *lines]), level=messages.ERROR)
            else:
                self.message_user(request, f"imported {imported} examples", level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:cognitive_dataset_change", args=[dataset.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import examples into {dataset.name}",
            "opts": self.model._meta,
            "original": dataset,
            "form": form,
        }
        return TemplateResponse(request, "admin/cognitive/dataset/import.html", context)
