"""Stats over a window, read from the usage rollups (never from a scan of executions).

Every function takes the rollup filters of one subject (a program, a version, a module, an LM,
a user) and returns plain dicts for the API and the admin. Buckets are hours, so a window
starts at the hour of `since`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cognitive.errors import InvalidInput
from cognitive.models import RollupScope, UsageRollup
from cognitive.models.usage import LATENCY_FIELDS, NONE_ID
from cognitive.services.usage import hour_of, percentile_ms

DEFAULT_WINDOW = timedelta(hours=24)
_RELATIVE = re.compile(r"^(\d{1,6})([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_TOTALS = ("runs", "completed", "failed", "cancelled", "duration_ms", "lm_calls", "prompt_tokens",
           "completion_tokens", "cost", *LATENCY_FIELDS)


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime:
    """`?since=`: an ISO 8601 moment or a span back from now (`90m`, `24h`, `7d`); 24 h when absent."""
    now = now or timezone.now()
    if not value:
        return now - DEFAULT_WINDOW
    match = _RELATIVE.match(value.strip())
    if match:
        since = now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        since = parse_datetime(value.strip())
        if since is None:
            raise InvalidInput(
                f"since must be an ISO 8601 date-time or a span like 24h, 7d or 90m; got {value!r}", {"field": "since"}
            )
        if timezone.is_naive(since):
            since = timezone.make_aware(since, timezone.UTC)
    oldest = now - timedelta(days=settings.DSPEX_STATS_MAX_DAYS)
    if since < oldest:
        raise InvalidInput(
            f"since may go back at most {settings.DSPEX_STATS_MAX_DAYS} days", {"field": "since"}
        )
    return since


def _aggregate(queryset: Any) -> dict[str, Any]:
    return queryset.aggregate(**{name: Sum(name) for name in _TOTALS})


def _summary(totals: dict[str, Any]) -> dict[str, Any]:
    get = lambda name: totals.get(name) or 0  # noqa: E731
    runs, completed = get("runs"), get("completed")
    histogram = [get(name) for name in LATENCY_FIELDS]
    return {
        "runs": {"total": runs, "completed": completed, "failed": get("failed"), "cancelled": get("cancelled")},
        "success_rate": round(completed / runs, 4) if runs else None,
        "latency_ms": {
            "p50": percentile_ms(histogram, 0.5),
            "p95": percentile_ms(histogram, 0.95),
            "mean": round(get("duration_ms") / runs, 1) if runs else None,
        },
        "lm_calls": get("lm_calls"),
        "tokens": {
            "prompt": get("prompt_tokens"), "completion": get("completion_tokens"),
            "total": get("prompt_tokens") + get("completion_tokens"),
        },
        "cost_usd": round(float(get("cost")), 6),
    }


def _lm_summary(totals: dict[str, Any]) -> dict[str, Any]:
    get = lambda name: totals.get(name) or 0  # noqa: E731
    calls = get("lm_calls")
    return {
        "lm_calls": calls,
        "tokens": {
            "prompt": get("prompt_tokens"), "completion": get("completion_tokens"),
            "total": get("prompt_tokens") + get("completion_tokens"),
        },
        "cost_usd": round(float(get("cost")), 6),
        "mean_latency_ms": round(get("duration_ms") / calls, 1) if calls else None,
    }


def _window(since: datetime) -> Q:
    return Q(bucket__gte=hour_of(since))


def _groups(queryset: Any, *fields: str) -> list[dict[str, Any]]:
    """One round trip: sums per scope and `fields`; the callers add the few groups up as they need."""
    return list(queryset.values("scope", *fields).annotate(**{n: Sum(n) for n in _TOTALS}).order_by())


def _merge(groups: list[dict[str, Any]], scope: str, key: str | None = None) -> list[tuple[Any, dict[str, Any]]]:
    merged: dict[Any, dict[str, Any]] = {}
    for group in groups:
        if group["scope"] != scope:
            continue
        totals = merged.setdefault(group[key] if key else None, dict.fromkeys(_TOTALS, 0))
        for name in _TOTALS:
            totals[name] += group[name] or 0
    return sorted(merged.items(), key=lambda item: str(item[0]))


def _window_info(since: datetime) -> dict[str, Any]:
    return {"since": hour_of(since).isoformat(), "until": timezone.now().isoformat()}


def _total(groups: list[dict[str, Any]], scope: str) -> dict[str, Any]:
    merged = _merge(groups, scope)
    return merged[0][1] if merged else {}


def program_stats(program_id: Any, since: datetime) -> dict[str, Any]:
    groups = _groups(UsageRollup.objects.filter(_window(since), program_id=program_id), "version_id", "module_id", "lm")
    return {
        "window": _window_info(since),
        **_summary(_total(groups, RollupScope.RUN)),
        "by_version": [
            {"version": None if key == NONE_ID else str(key), **_summary(totals)}
            for key, totals in _merge(groups, RollupScope.RUN, "version_id")
        ],
        "by_module": [
            {"module": str(key), **_summary(totals)} for key, totals in _merge(groups, RollupScope.STEP, "module_id")
        ],
        "by_lm": [{"lm": key, **_lm_summary(totals)} for key, totals in _merge(groups, RollupScope.LM, "lm")],
    }


def version_stats(version_id: Any, since: datetime) -> dict[str, Any]:
    groups = _groups(UsageRollup.objects.filter(_window(since), version_id=version_id), "lm")
    return {
        "window": _window_info(since),
        **_summary(_total(groups, RollupScope.RUN)),
        "by_lm": [{"lm": key, **_lm_summary(totals)} for key, totals in _merge(groups, RollupScope.LM, "lm")],
    }


def module_stats(module_id: Any, since: datetime, *, owner_id: Any = None) -> dict[str, Any]:
    """Every execute of the module: as a pipeline step and as a single execute."""
    rows = UsageRollup.objects.filter(_window(since), module_id=module_id, scope=RollupScope.STEP)
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    return {"window": _window_info(since), **_summary(_aggregate(rows))}


def lm_stats(lm_name: str, since: datetime, *, owner_id: Any = None) -> dict[str, Any]:
    rows = UsageRollup.objects.filter(_window(since), lm=lm_name, scope=RollupScope.LM)
    if owner_id is not None:
        rows = rows.filter(owner_id=owner_id)
    return {"window": _window_info(since), **_lm_summary(_aggregate(rows))}


def user_stats(owner_id: Any, since: datetime) -> dict[str, Any]:
    rows = UsageRollup.objects.filter(_window(since), owner_id=owner_id).exclude(scope=RollupScope.STEP)
    groups = _groups(rows, "program_id", "lm")
    return {
        "window": _window_info(since),
        **_summary(_total(groups, RollupScope.RUN)),
        "by_program": [
            {"program": None if key == NONE_ID else str(key), **_summary(totals)}
            for key, totals in _merge(groups, RollupScope.RUN, "program_id")
        ],
        "by_lm": [{"lm": key, **_lm_summary(totals)} for key, totals in _merge(groups, RollupScope.LM, "lm")],
    }


def overview(since: datetime) -> dict[str, Any]:
    """Everything in the window, by program and by LM (the admin dashboard)."""
    rows = UsageRollup.objects.filter(_window(since))
    groups = _groups(rows.exclude(scope=RollupScope.STEP), "program_id", "lm")
    series = ("runs", "failed")
    return {
        **_summary(_total(groups, RollupScope.RUN)),
        "by_program": _merge(groups, RollupScope.RUN, "program_id"),
        "by_lm": _merge(groups, RollupScope.LM, "lm"),
        "series": list(
            rows.filter(scope=RollupScope.RUN).values("bucket").annotate(**{n: Sum(n) for n in series})
            .order_by("bucket")
        ),
    }
