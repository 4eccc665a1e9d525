"""The operators' dashboard in the admin (staff): the last hour, day or week at a glance.

Runs per minute and failures, p95 latency, tokens and cost by program and by LM come from the
usage rollups (hour buckets); the last hour's per-minute series reads the executions created in
that hour (by the `created_at` index, at most DASHBOARD_MAX_ROWS of them). Queue depth, runs in
flight, worker heartbeats and running optimizations are read as they are now. Charts are inline
SVG drawn here: nothing is loaded from anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from cognitive import selectors_usage
from cognitive.admin.optimization import render_progress_bar
from cognitive.models import Execution, Heartbeat, HeartbeatKind, OptimizationRun, OptimizationRunStatus, Program
from cognitive.models.usage import NONE_ID
from cognitive.telemetry.exposition import workers_alive

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
DASHBOARD_MAX_ROWS = 100_000
WIDTH, HEIGHT, PAD = 640, 160, 30


def render_bars(
    points: Sequence[tuple[str, float]], *, label: str, color: str = "#2c6fbb", unit: str = ""
) -> SafeString:
    """One bar per point, with its value on hover; labels are escaped, values formatted here."""
    if not points:
        return mark_safe(f"<p>no {escape(label)} in this window</p>")  # noqa: S308 (escaped)
    top = max(value for _, value in points) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / len(points)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" style="background:#fff;border:1px solid #ddd">',
        f'<text x="4" y="{PAD - 12}" font-size="11">{escape(label)} (max {top:.4g}{escape(unit)})</text>',
        f'<line x1="{PAD}" y1="{PAD + inner_h}" x2="{PAD + inner_w}" y2="{PAD + inner_h}" stroke="#999"/>',
    ]
    for index, (name, value) in enumerate(points):
        height = inner_h * value / top
        parts.append(
            f'<rect x="{PAD + index * step:.1f}" y="{PAD + inner_h - height:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{height:.1f}" fill="{color}"><title>{escape(name)}: {value:.4g}{escape(unit)}</title></rect>'
        )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{escape(points[0][0])}</text>'
        f'<text x="{PAD + inner_w - 90}" y="{HEIGHT - 8}" font-size="10">{escape(points[-1][0])}</text></svg>'
    )
    return mark_safe("".join(parts))  # noqa: S308 (names escaped, numbers formatted above)


def _minute_series(since: datetime) -> list[dict[str, Any]]:
    recent = Execution.objects.filter(parent__isnull=True, created_at__gte=since).order_by("-created_at")
    ids = recent.values("id")[:DASHBOARD_MAX_ROWS]
    return list(
        Execution.objects.filter(id__in=ids)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(runs=Count("id"), failed=Count("id", filter=Q(status="failed")))
        .order_by("minute")
    )


def dashboard_data(window: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    since = now - WINDOWS[window]
    overview = selectors_usage.overview(since)
    if window == "hour":
        minutes = _minute_series(since)
        runs_per_minute = [(m["minute"].strftime("%H:%M"), float(m["runs"])) for m in minutes]
        failures = [(m["minute"].strftime("%H:%M"), float(m["failed"])) for m in minutes]
    else:
        runs_per_minute = [(b["bucket"].strftime("%m-%d %H:00"), (b["runs"] or 0) / 60) for b in overview["series"]]
        failures = [(b["bucket"].strftime("%m-%d %H:00"), float(b["failed"] or 0)) for b in overview["series"]]
    names = dict(Program.objects.filter(pk__in=[key for key, _ in overview["by_program"]]).values_list("id", "name"))
    by_program = [
        {
            "name": "(single module executes)" if key == NONE_ID else names.get(key, str(key)),
            "runs": totals["runs"] or 0, "failed": totals["failed"] or 0,
            "tokens": (totals["prompt_tokens"] or 0) + (totals["completion_tokens"] or 0),
            "cost": round(float(totals["cost"] or 0), 6),
        }
        for key, totals in overview["by_program"]
    ]
    by_lm = [
        {
            "name": key or "(unnamed)", "calls": totals["lm_calls"] or 0,
            "tokens": (totals["prompt_tokens"] or 0) + (totals["completion_tokens"] or 0),
            "cost": round(float(totals["cost"] or 0), 6),
        }
        for key, totals in overview["by_lm"]
    ]
    return {
        "window": window,
        "since": since,
        "summary": {k: overview[k] for k in ("runs", "success_rate", "latency_ms", "lm_calls", "tokens", "cost_usd")},
        "runs_chart": render_bars(runs_per_minute, label="runs per minute"),
        "failures_chart": render_bars(failures, label="failures", color="#c0392b"),
        "cost_chart": render_bars([(p["name"], p["cost"]) for p in by_program], label="cost by program", unit=" USD"),
        "by_program": sorted(by_program, key=lambda p: -p["cost"]),
        "by_lm": sorted(by_lm, key=lambda p: -p["cost"]),
        "queue_depth": {
            "executions": Execution.objects.filter(status="pending", parent__isnull=True).count(),
            "optimization": OptimizationRun.objects.filter(status=OptimizationRunStatus.QUEUED).count(),
        },
        "in_flight": Execution.objects.filter(status="running", parent__isnull=True).count(),
        "workers": list(Heartbeat.objects.filter(kind=HeartbeatKind.WORKER).order_by("-seen_at")[:50]),
        "workers_alive": workers_alive().count(),
        "optimizations": [
            {"run": run, "progress": render_progress_bar(run)}
            for run in OptimizationRun.objects.filter(status=OptimizationRunStatus.RUNNING)
            .select_related("program").order_by("started_at")[:50]
        ],
    }


def dashboard_view(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "day")
    if window not in WINDOWS:
        window = "day"
    context = {
        **admin.site.each_context(request),
        "title": "Operations dashboard",
        "windows": list(WINDOWS),
        **dashboard_data(window),
    }
    return TemplateResponse(request, "admin/cognitive/dashboard.html", context)
