"""Each worker node writes a heartbeat row while it runs, for the dashboard's "workers alive".

Connected to Celery's `worker_ready` (in the worker's main process, whatever the pool) and
`worker_shutdown`; a killed worker simply stops beating and ages out.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_process_shutdown, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from prometheus_client import multiprocess

from cognitive.models import WorkerHeartbeat

logger = logging.getLogger(__name__)
_stop = threading.Event()


def beat(name: str, started_at: Any) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=name[:200], defaults={"pid": os.getpid(), "started_at": started_at, "last_seen": timezone.now()}
    )


def _keep_beating(name: str) -> None:
    started_at = timezone.now()
    while not _stop.is_set():
        try:
            close_old_connections()
            beat(name, started_at)
        except Exception:
            # A database hiccup must not end the heartbeat thread; the next beat tries again.
            logger.warning("worker heartbeat failed", exc_info=True)
        _stop.wait(settings.DSPEX_WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    name = getattr(sender, "hostname", None) or f"worker:{os.getpid()}"
    threading.Thread(target=_keep_beating, args=(name,), name="dspex-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    _stop.set()
    name = getattr(sender, "hostname", None)
    if name:
        WorkerHeartbeat.objects.filter(name=name[:200]).delete()


@worker_process_shutdown.connect
def forget_live_gauges(pid: int | None = None, **kwargs: Any) -> None:
    """A prefork child exits: its live gauge samples go (counters stay, as Prometheus expects)."""
    multiprocess.mark_process_dead(pid or os.getpid(), path=str(settings.PROMETHEUS_MULTIPROC_DIR))
