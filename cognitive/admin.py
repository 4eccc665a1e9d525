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

from cognitive.engine.modules import validate_module_config
from cognitive.engine.optimizers import validate_optimizer_config
from cognitive.errors import ApplicationError, InvalidInput
from cognitive.models import Execution, LanguageModel, Module, Optimizer, Program, ProgramVersion, Signature
from cognitive.selectors import signature_complexity_of
from cognitive.services import executions, modules, programs
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
        service = self.transition_services.get(name or "")
        if service is None:
            return super().response_change(request, obj)
        try:
            service(obj)
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
            validate_module_config(cleaned.get("type", ""), cleaned.get("config", {}))
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
        "initialize": lambda module: modules.module_initialize(module=module),
        "reset": lambda module: modules.module_reset(module=module),
    }


@admin.register(Program)
class ProgramAdmin(ServiceTransitionAdmin):
    fsm_fields = ["status"]
    list_display = ["name", "status", "active_version", "owner", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "description"]
    readonly_fields = ["active_version", "created_at", "updated_at"]
    transition_services = {
        "activate": lambda program: programs.program_activate(program=program),
        "archive": lambda program: programs.program_archive(program=program),
    }


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
    list_filter = ["status", "program"]
    date_hierarchy = "created_at"
    inlines = [ChildExecutionInline]
    readonly_fields = [
        "program", "version", "module", "parent", "step_id", "owner", "input_pretty", "output_pretty",
        "trace_pretty", "metrics", "duration_ms", "error", "priority", "attempt", "max_attempts", "attempts",
        "run_after", "lease_expires_at", "worker_id", "idempotency_key", "started_at", "finished_at", "created_at",
    ]
    exclude = ["input", "output", "trace"]
    transition_services = {"cancel": lambda execution: executions.execution_cancel(execution=execution)}

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
