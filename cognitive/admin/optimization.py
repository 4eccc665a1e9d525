"""Optimization in the admin: runs with live progress and a score-per-trial chart, cancel, promote, roll back.

The chart is an inline SVG rendered here, so the admin needs no JavaScript from anywhere.
Promote and roll back are buttons on the change pages (a version, its optimization run, a
program); each POSTs to an admin URL that calls the service and shows its message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST

from cognitive.admin.core import ProgramAdmin, ProgramVersionAdmin, ServiceTransitionAdmin
from cognitive.errors import ApplicationError
from cognitive.models import (
    ActiveVersionChange,
    OptimizationRun,
    OptimizationSchedule,
    Program,
    ProgramStatus,
    ProgramVersion,
)
from cognitive.services.optimization_requests import optimization_cancel
from cognitive.services.versions import previous_active_version, program_promote, program_rollback

# One template for every change page with promote / roll back buttons: django_fsm's change form
# (transition buttons) plus a small POST form per button among the object tools.
BUTTONS_TEMPLATE = "admin/cognitive/version_buttons_change_form.html"
_SWITCHABLE = (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING)

CHART_WIDTH, CHART_HEIGHT, PAD = 560, 200, 32


def render_trial_chart(trials: list[dict[str, Any]], *, baseline: float | None, final: float | None) -> SafeString:
    """Score per trial as a line with points; dashed lines for the baseline and final val scores."""
    scores = [float(t.get("score") or 0.0) for t in trials if isinstance(t, dict)]
    if not scores:
        return format_html("<p>{}</p>", "no trials yet")
    inner_w, inner_h = CHART_WIDTH - 2 * PAD, CHART_HEIGHT - 2 * PAD

    def x(index: int) -> float:
        return PAD + (inner_w * index / (len(scores) - 1) if len(scores) > 1 else inner_w / 2)

    def y(score: float) -> float:
        return PAD + inner_h * (1 - max(0.0, min(1.0, score)))

    points = " ".join(f"{x(i):.1f},{y(s):.1f}" for i, s in enumerate(scores))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
        f'role="img" aria-label="score per trial" style="background:#fff;border:1px solid #ddd">',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + inner_h}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{PAD + inner_w}" y2="{PAD + inner_h}" stroke="#999"/>',
        f'<text x="4" y="{PAD + 4}" font-size="10">1.0</text>',
        f'<text x="4" y="{PAD + inner_h}" font-size="10">0.0</text>',
        f'<text x="{PAD + inner_w - 40}" y="{CHART_HEIGHT - 8}" font-size="10">trial {len(scores)}</text>',
    ]
    for label, value, color in (("baseline", baseline, "#c0392b"), ("final", final, "#27ae60")):
        if value is not None:
            parts.append(
                f'<line x1="{PAD}" y1="{y(value):.1f}" x2="{PAD + inner_w}" y2="{y(value):.1f}" stroke="{color}" '
                f'stroke-dasharray="4 3"/><text x="{PAD + inner_w - 70}" y="{y(value) - 3:.1f}" font-size="10" '
                f'fill="{color}">{label} {value:.3f}</text>'
            )
    parts.append(f'<polyline points="{points}" fill="none" stroke="#2c6fbb" stroke-width="2"/>')
    for i, score in enumerate(scores):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(score):.1f}" r="3" fill="#2c6fbb"><title>trial {i + 1}: '
            f"{score:.3f}</title></circle>"
        )
    parts.append("</svg>")
    # Every value above is a number this function formatted; nothing user-supplied reaches the markup.
    return mark_safe("".join(parts))  # noqa: S308


def render_progress_bar(run: OptimizationRun) -> SafeString:
    progress = run.progress or {}
    done, planned = progress.get("trials_done") or 0, progress.get("trials_planned")
    fraction = 1.0 if run.status == "succeeded" else (min(done / planned, 1.0) if planned else 0.0)
    return format_html(
        '<div style="width:120px;background:#eee;display:inline-block"><div style="width:{}%;background:#2c6fbb;'
        'height:8px"></div></div> {} · {} trials · {} LM calls',
        round(fraction * 100), progress.get("phase", run.status), f"{done}/{planned or '?'}",
        progress.get("lm_calls", 0),
    )


@admin.register(OptimizationRun)
class OptimizationRunAdmin(ServiceTransitionAdmin):
    fsm_fields = ["status"]
    list_display = [
        "program", "optimizer_type", "metric", "status", "progress_bar", "baseline_score", "final_score", "promoted",
        "created_at",
    ]
    list_filter = ["status", "optimizer_type", "promoted"]
    search_fields = ["program__name"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "program", "optimizer", "optimizer_type", "optimizer_config", "dataset", "metric", "metric_config", "budget",
        "schedule", "owner", "progress_bar", "chart", "baseline_score", "final_score", "result_version", "promoted",
        "log_text", "progress", "error", "attempt", "max_attempts", "attempts", "lease_expires_at", "worker_id",
        "started_at", "finished_at", "created_at",
    ]
    exclude = ["log", "trials", "published_at"]
    transition_services = {"cancel": lambda run: optimization_cancel(run=run, reason="cancelled in the admin")}
    actions = ["promote_result"]
    change_form_template = BUTTONS_TEMPLATE

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        version = run.result_version if run is not None else None
        buttons = []
        if version is not None and _promotable(version) and _may_change_program(request, version.program):
            buttons.append(_button(
                reverse("admin:cognitive_programversion_promote", args=[version.pk]),
                f"Promote this version (v{version.number})", next_url=request.path,
            ))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "version_buttons": buttons})

    @admin.display(description="progress")
    def progress_bar(self, obj: OptimizationRun) -> str:
        return render_progress_bar(obj)

    @admin.display(description="score per trial")
    def chart(self, obj: OptimizationRun) -> str:
        return render_trial_chart(obj.trials or [], baseline=obj.baseline_score, final=obj.final_score)

    @admin.display(description="log")
    def log_text(self, obj: OptimizationRun) -> str:
        return format_html("<pre>{}</pre>", "\n".join(obj.log or []))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Promote the selected runs' versions")
    def promote_result(self, request: HttpRequest, queryset: QuerySet[OptimizationRun]) -> None:
        for run in queryset.select_related("program", "result_version"):
            if run.result_version is None:
                self.message_user(request, f"{run}: no version to promote", level=messages.WARNING)
                continue
            try:
                program_promote(program=run.program, version=run.result_version, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{run}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"{run.program}: v{run.result_version.number} is active", messages.SUCCESS)


@admin.register(OptimizationSchedule)
class OptimizationScheduleAdmin(admin.ModelAdmin):
    """The cron itself is edited on the linked periodic task (django-celery-beat's admin)."""

    list_display = ["program", "cron", "optimizer_type", "metric", "enabled", "last_started_at", "last_outcome"]
    list_filter = ["enabled", "optimizer_type"]
    readonly_fields = ["program", "periodic_task", "last_started_at", "last_checked_at", "last_outcome", "owner"]


@admin.register(ActiveVersionChange)
class ActiveVersionChangeAdmin(admin.ModelAdmin):
    list_display = ["program", "kind", "from_version", "to_version", "actor", "reason", "created_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Roll back to the previously active version")
def rollback_programs(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Program]) -> None:
    for program in queryset:
        try:
            rolled = program_rollback(program=program, actor=request.user)
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{program}: {exc.message}", level=messages.ERROR)
        else:
            label = f"v{rolled.active_version.number}" if rolled.active_version else "the modules as declared"
            modeladmin.message_user(request, f"{program}: rolled back to {label}", level=messages.SUCCESS)


def _button(url: str, label: str, *, next_url: str = "") -> dict[str, str]:
    return {"url": url, "label": label, "next": next_url}


def _promotable(version: ProgramVersion) -> bool:
    program = version.program
    return program.status in _SWITCHABLE and program.active_version_id != version.pk


def _may_change_program(request: HttpRequest, program: Program) -> bool:
    return admin.site.get_model_admin(Program).has_change_permission(request, program)


def _back(request: HttpRequest, default: str) -> HttpResponseRedirect:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(target if target and safe else default)


# The program and version admins live in admin.py; the buttons are added here, next to the services they call.


class OptimizingProgramAdmin(ProgramAdmin):
    """ProgramAdmin with the roll back action and button."""

    change_form_template = BUTTONS_TEMPLATE
    actions = [*(ProgramAdmin.actions or []), rollback_programs]

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<uuid:pk>/rollback/", self.admin_site.admin_view(require_POST(self.rollback_view)),
                name="cognitive_program_rollback",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        program = self.get_object(request, object_id)
        buttons = []
        if program is not None and program.status in _SWITCHABLE:
            found, target = previous_active_version(program)
            if found:
                label = f"v{target.number}" if target else "the modules as declared"
                buttons.append(_button(
                    reverse("admin:cognitive_program_rollback", args=[program.pk]),
                    f"Roll back to the previous version ({label})",
                ))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "version_buttons": buttons})

    def rollback_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        program = get_object_or_404(Program, pk=pk)
        if not self.has_change_permission(request, program):
            raise PermissionDenied
        try:
            rolled = program_rollback(program=program, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"{program}: {exc.message}", level=messages.ERROR)
        else:
            label = f"v{rolled.active_version.number}" if rolled.active_version else "the modules as declared"
            self.message_user(request, f"{program}: rolled back to {label}", level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:cognitive_program_change", args=[program.pk]))


class PromotableVersionAdmin(ProgramVersionAdmin):
    """ProgramVersionAdmin (read-only) with a promote button; promoting needs change permission on the program."""

    change_form_template = BUTTONS_TEMPLATE

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<uuid:pk>/promote/", self.admin_site.admin_view(require_POST(self.promote_view)),
                name="cognitive_programversion_promote",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        version = self.get_object(request, object_id)
        buttons = []
        if version is not None and _promotable(version) and _may_change_program(request, version.program):
            buttons.append(_button(reverse("admin:cognitive_programversion_promote", args=[version.pk]),
                                   "Promote this version"))
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "version_buttons": buttons})

    def promote_view(self, request: HttpRequest, pk: Any) -> HttpResponse:
        version = get_object_or_404(ProgramVersion.objects.select_related("program"), pk=pk)
        program = version.program
        if not _may_change_program(request, program):
            raise PermissionDenied
        try:
            program_promote(program=program, version=version, actor=request.user)
        except ApplicationError as exc:
            self.message_user(request, f"{program}: {exc.message}", level=messages.ERROR)
        else:
            self.message_user(request, f"{program}: v{version.number} is active", level=messages.SUCCESS)
        return _back(request, reverse("admin:cognitive_programversion_change", args=[version.pk]))


admin.site.unregister(Program)
admin.site.register(Program, OptimizingProgramAdmin)
admin.site.unregister(ProgramVersion)
admin.site.register(ProgramVersion, PromotableVersionAdmin)
