"""Usage rollups, kept as runs finish: one upsert per final state, in the job core's finishing transaction.

A top-level execution adds to hour buckets (UTC) of three scopes:
- `run`:  the run itself (by owner, program, version; a single module execute by its module),
- `step`: each pipeline step that ran a module (or the module of a single execute),
- `lm`:   the LM calls of the run, per LanguageModel name.
Counts, durations (sum and a latency histogram), LM calls, tokens and cost (USD) are added with
`INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x`, so concurrent finishes never lose a count.
What a retried attempt spent before it went back to the queue is not counted: only the attempt
that ended the run is (docs/observability.md).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from cognitive.models import Execution, ExecutionStatus, RollupScope, UsageRollup
from cognitive.models.usage import LATENCY_BOUNDS_MS, LATENCY_FIELDS, NONE_ID

KEY_FIELDS = ("bucket", "scope", "owner_id", "program_id", "version_id", "module_id", "lm")
SUM_FIELDS = (
    "runs", "completed", "failed", "cancelled", "duration_ms", "lm_calls", "prompt_tokens", "completion_tokens",
    "cost", *LATENCY_FIELDS,
)
_STATUS_FIELD = {
    ExecutionStatus.COMPLETED: "completed", ExecutionStatus.FAILED: "failed", ExecutionStatus.CANCELLED: "cancelled",
}


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def latency_field(duration_ms: int) -> str:
    return LATENCY_FIELDS[bisect.bisect_left(LATENCY_BOUNDS_MS, duration_ms)]


class _Rows:
    """Sums per rollup key before the one statement (a key may not appear twice in an upsert)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(
        self, key: tuple[Any, ...], *, status: str | None, duration_ms: int | None, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        row = self.rows.setdefault(key, dict.fromkeys(SUM_FIELDS, 0))
        if status is not None:
            row["runs"] += 1
            row[_STATUS_FIELD.get(status, "failed")] += 1
        if duration_ms is not None:
            row["duration_ms"] += int(duration_ms)
            row[latency_field(int(duration_ms))] += 1
        row["lm_calls"] += int(usage.get("lm_calls") or 0)
        row["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        row["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        row["cost"] += float(usage.get("cost") or 0.0)
        return row


def record_execution_final(job: Any, status: str, values: Mapping[str, Any]) -> None:
    """Add a top-level execution that just reached `status` to the rollups (call inside the finishing transaction)."""
    if "metrics" in values:
        metrics, duration_ms = values.get("metrics") or {}, values.get("duration_ms")
    else:
        stored = Execution.objects.filter(pk=job.pk).values("metrics", "duration_ms").first() or {}
        metrics, duration_ms = stored.get("metrics") or {}, stored.get("duration_ms")
    bucket = hour_of(timezone.now())
    owner, program, version = job.owner_id, job.program_id or NONE_ID, job.version_id or NONE_ID
    rows = _Rows()
    run_module = NONE_ID if job.program_id else (job.module_id or NONE_ID)
    rows.add(
        (bucket, RollupScope.RUN, owner, program, version, run_module, ""),
        status=status, duration_ms=duration_ms, usage=metrics,
    )
    if job.program_id is None:
        if job.module_id is not None and job.attempt:
            rows.add(
                (bucket, RollupScope.STEP, owner, NONE_ID, NONE_ID, job.module_id, ""),
                status=status, duration_ms=duration_ms, usage=metrics,
            )
        lm_usage = [metrics.get("by_lm") or {}]
    else:
        steps = Execution.objects.filter(parent_id=job.pk, attempt=job.attempt).values_list(
            "module_id", "status", "duration_ms", "metrics"
        ) if job.attempt else []
        lm_usage = []
        for module_id, step_status, step_ms, step_metrics in steps:
            step_metrics = step_metrics or {}
            lm_usage.append(step_metrics.get("by_lm") or {})
            if module_id is not None:
                rows.add(
                    (bucket, RollupScope.STEP, owner, program, version, module_id, ""),
                    status=step_status, duration_ms=step_ms, usage=step_metrics,
                )
    for by_lm in lm_usage:
        for lm, usage in by_lm.items():
            key = (bucket, RollupScope.LM, owner, program, version, NONE_ID, str(lm)[:100])
            row = rows.add(key, status=None, duration_ms=None, usage=usage)
            # The LM scope keeps the LM calls' total latency (its mean is shown; no histogram per call).
            row["duration_ms"] += int(usage.get("latency_ms") or 0)
    upsert(rows.rows)


def upsert(rows: Mapping[tuple[Any, ...], Mapping[str, Any]]) -> None:
    if not rows:
        return
    meta = UsageRollup._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [meta.get_field(name) for name in (*KEY_FIELDS, *SUM_FIELDS)]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    # Keys in one order in every transaction, so two finishing runs cannot deadlock on their rows.
    for key in sorted(rows, key=lambda k: tuple(str(part) for part in k)):
        row = rows[key]
        for field, value in zip(fields, (*key, *(row[name] for name in SUM_FIELDS)), strict=True):
            params.append(field.get_db_prep_save(value, connection))
    key_columns = ", ".join(quote(meta.get_field(name).column) for name in KEY_FIELDS)
    updates = ", ".join(
        f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in SUM_FIELDS
    )
    # Table and column names come from the model; every value is a parameter.
    values = ", ".join([placeholders] * len(rows))
    sql = f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT ({key_columns}) DO UPDATE SET {updates}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def percentile_ms(histogram: Iterable[int], q: float) -> float | None:
    """The q-quantile of a latency histogram (counts per LATENCY_BOUNDS_MS bucket), interpolated in its bucket."""
    counts = list(histogram)
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index >= len(LATENCY_BOUNDS_MS):
                return float(low)  # the open-ended bucket: at least this
            high = LATENCY_BOUNDS_MS[index]
            return round(low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])
