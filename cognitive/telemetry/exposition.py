"""What a scrape returns: every process's samples (multiprocess files) plus gauges read from the database.

Queue depth, runs in flight and live workers are computed at scrape time from the rows (each a
count over a partial index), so they are right whichever process changed them, and no process
has to keep a gauge in step.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cognitive.models import (
    Execution,
    ExecutionStatus,
    Heartbeat,
    HeartbeatKind,
    OptimizationRun,
    OptimizationRunStatus,
)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("dspex_queue_depth", "Pending jobs by queue", labels=["queue"])
        depth.add_metric(
            ["executions"], Execution.objects.filter(status=ExecutionStatus.PENDING, parent__isnull=True).count()
        )
        depth.add_metric(
            ["optimization"], OptimizationRun.objects.filter(status=OptimizationRunStatus.QUEUED).count()
        )
        yield depth
        running = GaugeMetricFamily("dspex_runs_in_flight", "Jobs running now by kind", labels=["kind"])
        running.add_metric(
            ["execution"], Execution.objects.filter(status=ExecutionStatus.RUNNING, parent__isnull=True).count()
        )
        running.add_metric(
            ["optimization"], OptimizationRun.objects.filter(status=OptimizationRunStatus.RUNNING).count()
        )
        yield running
        yield GaugeMetricFamily(
            "dspex_workers_alive", "Celery workers whose heartbeat is recent", value=workers_alive().count()
        )


def workers_alive() -> object:
    cutoff = timezone.now() - timedelta(seconds=3 * settings.DSPEX_WORKER_HEARTBEAT_SECONDS)
    return Heartbeat.objects.filter(kind=HeartbeatKind.WORKER, seen_at__gte=cutoff)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    registry.register(DatabaseCollector())
    return registry


def scrape() -> bytes:
    return generate_latest(registry())
