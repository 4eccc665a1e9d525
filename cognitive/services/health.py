"""Liveness and readiness: the heartbeats background processes leave, and the checks `/readyz` runs.

A check reports what failed by kind (an exception's class name, a queue's name), never by message:
messages can carry hosts, users and passwords from connection URLs, and the endpoints are public.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from kombu import Connection

from cognitive.models import Heartbeat, HeartbeatKind

logger = logging.getLogger(__name__)

SWEEPER = "sweeper"
_WORKER_PREFIX = "worker:"
_BROKER_TIMEOUT_S = 2.0

Check = dict[str, Any]


# --------------------------------------------------------------------------- heartbeats


def worker_heartbeat(*, node: str, queues: Iterable[str]) -> None:
    """A worker (named `node`, consuming `queues`) is alive now."""
    Heartbeat.objects.update_or_create(
        name=f"{_WORKER_PREFIX}{node}",
        defaults={"kind": HeartbeatKind.WORKER, "queues": sorted(queues), "seen_at": timezone.now()},
    )


def worker_stopped(*, node: str) -> None:
    """A worker shut down cleanly: its queues lose a consumer now rather than when its heartbeat ages out."""
    Heartbeat.objects.filter(name=f"{_WORKER_PREFIX}{node}").delete()


def sweeper_ran() -> None:
    Heartbeat.objects.update_or_create(
        name=SWEEPER, defaults={"kind": HeartbeatKind.SWEEPER, "seen_at": timezone.now()}
    )


# --------------------------------------------------------------------------- checks


def routed_queues() -> list[str]:
    return sorted(queue.name for queue in settings.CELERY_TASK_QUEUES)


def _check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _check_cache() -> Check:
    key = f"dspex:readyz:{os.getpid()}"
    cache.set(key, "1", 10)
    ok = cache.get(key) == "1"
    backend = "redis" if "redis" in settings.CACHES["default"]["BACKEND"].lower() else "local memory"
    return {"ok": ok, "backend": backend}


def _check_broker() -> Check:
    url = settings.CELERY_BROKER_URL
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    transport = url.split("://", 1)[0]
    if transport == "filesystem":
        # Connecting to a folder always succeeds; what can fail is writing into it.
        folder = options["data_folder_in"]
        return {"ok": os.path.isdir(folder) and os.access(folder, os.W_OK), "transport": transport}
    with Connection(url, transport_options=options, connect_timeout=_BROKER_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=0, timeout=_BROKER_TIMEOUT_S)  # one attempt: a probe must not hang
    return {"ok": True, "transport": transport}


def _check_workers() -> Check:
    window = settings.DSPEX_READY_WORKER_SECONDS
    since = timezone.now() - timedelta(seconds=window)
    beats = Heartbeat.objects.filter(kind=HeartbeatKind.WORKER, seen_at__gte=since)
    live = list(beats.values_list("queues", flat=True))
    consumed = {queue for queues in live for queue in queues}
    unconsumed = [queue for queue in routed_queues() if queue not in consumed]
    return {"ok": bool(live) and not unconsumed, "live_workers": len(live), "within_seconds": window,
            "queues_without_a_worker": unconsumed}


def _check_sweeper() -> Check:
    window = settings.DSPEX_READY_SWEEPER_SECONDS
    seen_at = Heartbeat.objects.filter(name=SWEEPER).values_list("seen_at", flat=True).first()
    age = (timezone.now() - seen_at).total_seconds() if seen_at else None
    return {"ok": age is not None and age <= window, "last_run_seconds_ago": None if age is None else round(age, 1),
            "within_seconds": window}


_CHECKS: dict[str, Callable[[], Check]] = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
    "workers": _check_workers,
    "sweeper": _check_sweeper,
}


def readiness() -> dict[str, Any]:
    """Every check's result; ready only when all pass. A check that raises fails alone, naming the error's type."""
    checks: dict[str, Check] = {}
    for name, check in _CHECKS.items():
        try:
            checks[name] = check()
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__, exc_info=True)
            checks[name] = {"ok": False, "error": type(exc).__name__}
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": checks}
