"""Spend budgets (staff set them; remaining shown per period) and worker heartbeats, in the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from cognitive.models import SpendBudget, WorkerHeartbeat
from cognitive.services.budgets import budget_periods


@admin.register(SpendBudget)
class SpendBudgetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "daily_usd", "monthly_usd", "remaining"]
    list_select_related = ["user", "program"]
    autocomplete_fields: list[str] = []
    raw_id_fields = ["user", "program"]
    readonly_fields = ["remaining"]

    @admin.display(description="spent / remaining")
    def remaining(self, obj: SpendBudget) -> str:
        if obj.pk is None:
            return "—"
        periods = budget_periods(obj)
        if not periods:
            return "no limit set"
        return format_html_join(
            "; ", "{}: ${} spent, ${} left (resets {})",
            ((p.period, f"{p.spent_usd:.4f}", f"{p.remaining_usd:.4f}", p.resets_at.strftime("%Y-%m-%d %H:%M UTC"))
             for p in periods),
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_staff

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_staff


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "pid", "started_at", "last_seen"]
    ordering = ["-last_seen"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
