"""Spend budgets (staff set them; remaining shown per period) and heartbeats (workers, sweeper), in the admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from cognitive.models import Heartbeat, Program, SpendBudget
from cognitive.selectors_usage import program_stats
from cognitive.services.budgets import budget_periods


def render_program_usage(program: Program) -> str:
    """The program's stats over the last 24 h and what is left of its budget (from the rollups)."""
    stats = program_stats(program.pk, timezone.now() - timedelta(hours=24))
    runs, latency = stats["runs"], stats["latency_ms"]
    budget = SpendBudget.objects.filter(program=program).first()
    left = "; ".join(
        f"{p.period} ${p.remaining_usd:.4f} of ${p.limit_usd:g} left" for p in budget_periods(budget)
    ) if budget else "no budget"
    return format_html(
        "{} runs ({} completed, {} failed, {} cancelled) · success rate {} · p50 {} ms · p95 {} ms · "
        "{} LM calls · {} tokens · ${} · budget: {}",
        runs["total"], runs["completed"], runs["failed"], runs["cancelled"],
        "—" if stats["success_rate"] is None else f"{stats['success_rate']:.0%}",
        latency["p50"] if latency["p50"] is not None else "—", latency["p95"] if latency["p95"] is not None else "—",
        stats["lm_calls"], stats["tokens"]["total"], f"{stats['cost_usd']:.4f}", left,
    )


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


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "queues", "seen_at"]
    list_filter = ["kind"]
    ordering = ["-seen_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
