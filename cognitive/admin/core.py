"""The Django admin. Forms validate with the engine's validators; transition buttons run the services."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import format_html, format_html_join
from django_fsm.admin import FSMAdminMixin

from cognitive.admin.runs import ExecutionLevelFilter, StepsInPipelineOrder
from cognitive.admin.traces import render_execution_tree
from cognitive.engine.modules import validate_module_config
from cognitive.engine.optimizers import validate_optimizer_config
from cognitive.errors import ApplicationError, InvalidInput
from cognitive.models import (
    Corpus,
    Document,
    Execution,
    LanguageModel,
    Module,
    ModuleState,
    Optimizer,
    Program,
    ProgramVersion,
    Signature,
)
from cognitive.selectors import corpus_list, signature_complexity_of
from cognitive.services import corpora, modules, programs
from cognitive.services.execution_jobs import execution_cancel
from cognitive.services.lm_access import lm_output_limit
from cognitive.services.pipeline_references import pipeline_with_names
from cognitive.services.pipelines import pipeline_check
from cognitive.signatures import parse_signature


def _form_error(exc: InvalidInput, field: str) -> forms.ValidationError:
    position = exc.extra.get("position")
    suffix = f" (at character {position})" if position is not None else ""
    return forms.ValidationError({field: f"{exc.message}{suffix}"})


class ServiceTransitionAdmin(FSMAdminMixin, admin.ModelAdmin):
    """Transition buttons run the service for that action, so the admin obeys the same rules as the API."""

    transition_services: dict[str, Callable[[Any], Any]] = {}

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        name = request.POST.get(self.fsm_post_param)
        if not name:
            return super().response_change(request, obj)
        service = self.transition_services.get(name)
        if service is None:
            # Only the buttons shown may be pressed: a hand-made POST must not drive a worker's transition.
            self.message_user(request, f"'{name}' is not available here", level=messages.ERROR)
            return HttpResponseRedirect(request.path)
        try:
            # The row as saved (the form may just have changed it through a service), not the form's copy.
            service(type(obj).objects.get(pk=obj.pk))
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            self.message_user(request, f"{name.replace('_', ' ')}: done", level=messages.SUCCESS)
        return HttpResponseRedirect(request.path)


def _pretty_json(value: Any) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str))


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "api_base", "api_key_env", "rpm", "tpm"]
    search_fields = ["name", "model"]


class SignatureForm(forms.ModelForm):
    class Meta:
        model = Signature
        fields = ["name", "spec", "instructions", "metadata", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "spec" in cleaned:
            try:
                parsed = parse_signature(cleaned["spec"], cleaned.get("instructions", ""))
            except InvalidInput as exc:
                raise _form_error(exc, "spec") from None
            self.instance.input_fields = [f.as_dict() for f in parsed.inputs]
            self.instance.output_fields = [f.as_dict() for f in parsed.outputs]
        return cleaned


@admin.register(Signature)
class SignatureAdmin(admin.ModelAdmin):
    form = SignatureForm
    list_display = ["name", "spec", "owner", "complexity", "created_at"]
    search_fields = ["name", "spec"]
    readonly_fields = ["fields_table", "complexity", "created_at", "updated_at"]

    @admin.display(description="complexity")
    def complexity(self, obj: Signature) -> int:
        return signature_complexity_of(obj)

    @admin.display(description="parsed fields")
    def fields_table(self, obj: Signature) -> str:
        rows = [("input", f["name"], f["type"]) for f in obj.input_fields]
        rows += [("output", f["name"], f["type"]) for f in obj.output_fields]
        body = format_html_join("", "<tr><td>{}</td><td><b>{}</b></td><td><code>{}</code></td></tr>", rows)
        return format_html("<table><tr><th>side</th><th>name</th><th>type</th></tr>{}</table>", body)


class ModuleForm(forms.ModelForm):
    class Meta:
        model = Module
        fields = ["name", "type", "signature", "lm", "config", "cache_ttl", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            validate_module_config(
                cleaned.get("type", ""), cleaned.get("config", {}), lm_max_tokens=lm_output_limit(cleaned.get("lm"))
            )
        except InvalidInput as exc:
            raise _form_error(exc, "config") from None
        return cleaned


@admin.register(Module)
class ModuleAdmin(ServiceTransitionAdmin):
    form = ModuleForm
    fsm_fields = ["state"]
    list_display = ["name", "type", "signature", "lm", "state", "owner", "created_at"]
    list_filter = ["type", "state"]
    search_fields = ["name"]
    readonly_fields = ["error_reason", "created_at", "updated_at"]
    transition_services = {
        "initialize": lambda module: _initialize_or_report(module),
        "reset": lambda module: modules.module_reset(module=module),
    }

    def save_model(self, request: HttpRequest, obj: Module, form: forms.ModelForm, change: bool) -> None:
        """Through the services, so the admin keeps the API's rules (a redefined module is initialized again)."""
        data = form.cleaned_data
        if not change:
            fields = ("name", "type", "signature", "lm", "config", "cache_ttl")
            saved = modules.module_create(owner=data["owner"], **{name: data[name] for name in fields})
            obj.pk, obj._state.adding = saved.pk, False
            return
        original = Module.objects.get(pk=obj.pk)
        original.owner = data["owner"]  # ownership is the admin's to change; the services never do
        changed = {name: data[name] for name in form.changed_data if name != "owner"}
        modules.module_update(module=original, **changed)


def _initialize_or_report(module: Module) -> None:
    module = modules.module_initialize(module=module)
    if module.state == ModuleState.ERROR:
        # The row keeps its `error` state; the message tells the person pressing the button why.
        raise InvalidInput(f"initialize failed: {module.error_reason}")


class ProgramForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = ["name", "description", "pipeline", "variables", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        owner = cleaned.get("owner")
        if owner is not None and "pipeline" in cleaned:
            # The API's compose-time rules: modules and corpora of the owner (by name or id), sound bindings.
            cleaned["pipeline"] = pipeline_with_names(owner=owner, pipeline=cleaned["pipeline"])
            try:
                pipeline_check(owner=owner, pipeline=cleaned["pipeline"])
            except InvalidInput as exc:
                raise _form_error(exc, "pipeline") from None
        return cleaned


@admin.register(Program)
class ProgramAdmin(ServiceTransitionAdmin):
    form = ProgramForm
    fsm_fields = ["status"]
    list_display = ["name", "status", "active_version", "owner", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]
    readonly_fields = ["active_version", "usage", "created_at", "updated_at"]
    transition_services = {
        "activate": lambda program: programs.program_activate(program=program),
        "archive": lambda program: programs.program_archive(program=program),
    }

    @admin.display(description="usage (last 24 h)")
    def usage(self, obj: Program) -> str:
        from cognitive.admin.usage import render_program_usage

        return render_program_usage(obj) if obj.pk else "—"


@admin.register(ProgramVersion)
class ProgramVersionAdmin(admin.ModelAdmin):
    list_display = ["program", "number", "source", "created_at"]
    list_filter = ["source"]
    readonly_fields = ["program", "number", "source", "state_pretty", "scores", "created_at"]
    exclude = ["state"]

    @admin.display(description="DSPy state")
    def state_pretty(self, obj: ProgramVersion) -> str:
        return _pretty_json(obj.state)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OptimizerForm(forms.ModelForm):
    class Meta:
        model = Optimizer
        fields = ["name", "type", "config", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        try:
            validate_optimizer_config(cleaned.get("type", ""), cleaned.get("config", {}))
        except InvalidInput as exc:
            raise _form_error(exc, "config") from None
        return cleaned


@admin.register(Optimizer)
class OptimizerAdmin(admin.ModelAdmin):
    form = OptimizerForm
    list_display = ["name", "type", "owner", "created_at"]
    list_filter = ["type"]


class ChildExecutionInline(admin.TabularInline):
    model = Execution
    fk_name = "parent"
    formset = StepsInPipelineOrder
    fields = ["step_id", "module", "status", "duration_ms", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(ServiceTransitionAdmin):
    fsm_fields = ["status"]
    list_display = ["id", "program", "module", "step_id", "status", "attempt", "duration_ms", "created_at"]
    list_filter = [ExecutionLevelFilter, "status", "program"]
    date_hierarchy = "created_at"
    inlines = [ChildExecutionInline]
    readonly_fields = [
        "program", "version", "module", "parent", "step_id", "owner", "tree", "input_pretty", "context",
        "output_pretty", "trace_pretty", "metrics", "duration_ms", "error", "priority", "attempt", "max_attempts",
        "attempts",
        "run_after", "lease_expires_at", "worker_id", "idempotency_key", "started_at", "finished_at", "created_at",
    ]
    exclude = ["input", "output", "trace"]
    transition_services = {"cancel": lambda execution: execution_cancel(execution=execution)}

    @admin.display(description="run")
    def tree(self, obj: Execution) -> str:
        return render_execution_tree(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="input")
    def input_pretty(self, obj: Execution) -> str:
        return _pretty_json(obj.input)

    @admin.display(description="output")
    def output_pretty(self, obj: Execution) -> str:
        return _pretty_json(obj.output)

    @admin.display(description="trace")
    def trace_pretty(self, obj: Execution) -> str:
        return _pretty_json(obj.trace)


class CorpusForm(forms.ModelForm):
    new_documents = forms.CharField(
        label="add documents",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 100}),
        help_text="One document per line; or separate documents with blank lines, and then a document may span lines.",
    )

    class Meta:
        model = Corpus
        fields = ["name", "owner", "embedding_lm"]

    def clean_new_documents(self) -> list[str]:
        documents = corpora.documents_from_text(self.cleaned_data.get("new_documents") or "")
        if not documents:
            if self.instance._state.adding:
                raise forms.ValidationError("a new corpus needs at least one document")
            return []
        try:
            return corpora.documents_validate(documents)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ["position", "preview", "embedded"]
    readonly_fields = fields
    ordering = ["position"]
    extra = 0
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # through the "add documents" box, so they are validated and embedded

    @admin.display(description="text")
    def preview(self, obj: Document) -> str:
        return obj.text if len(obj.text) <= 300 else f"{obj.text[:300]}…"

    @admin.display(boolean=True)
    def embedded(self, obj: Document) -> bool:
        return obj.embedding is not None


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    """New corpora and added documents go through `services.corpora`, like the API."""

    form = CorpusForm
    list_display = ["name", "owner", "embedding_lm", "document_count", "pending_embeddings", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["document_count", "pending_embeddings", "created_at", "updated_at"]
    inlines = [DocumentInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return corpus_list(user=request.user)

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        return self.inlines if obj is not None else []

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    @admin.display(description="documents")
    def document_count(self, obj: Corpus) -> int | None:
        return getattr(obj, "document_count", None)

    @admin.display(description="not embedded yet")
    def pending_embeddings(self, obj: Corpus) -> int | None:
        return getattr(obj, "pending_embeddings", None)

    def save_form(self, request: HttpRequest, form: forms.ModelForm, change: bool) -> Any:
        if change:
            return super().save_form(request, form, change)
        data = form.cleaned_data
        return corpora.corpus_create(
            owner=data["owner"], name=data["name"], embedding_lm=data.get("embedding_lm"),
            documents=data["new_documents"],
        )

    def save_model(self, request: HttpRequest, obj: Corpus, form: forms.ModelForm, change: bool) -> None:
        if not change:
            return  # save_form created it, with its documents
        super().save_model(request, obj, form, change)
        documents = form.cleaned_data.get("new_documents")
        if documents:
            corpora.corpus_add_documents(corpus=obj, documents=documents)
            self.message_user(request, f"added {len(documents)} documents", level=messages.SUCCESS)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        if change:  # a new corpus has no inlines, and its form was never saved by the admin
            super().save_related(request, form, formsets, change)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["corpus", "position", "preview", "embedded", "created_at"]
    list_select_related = ["corpus"]
    search_fields = ["text", "corpus__name"]
    fields = ["corpus", "position", "text", "embedded", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="text")
    def preview(self, obj: Document) -> str:
        return obj.text if len(obj.text) <= 120 else f"{obj.text[:120]}…"

    @admin.display(boolean=True)
    def embedded(self, obj: Document) -> bool:
        return obj.embedding is not None

