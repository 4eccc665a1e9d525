"""Prometheus multiprocess bookkeeping for worker processes (their heartbeats are cognitive/heartbeats.py's)."""

from __future__ import annotations

import os
from typing import Any

from celery.signals import worker_process_shutdown
from django.conf import settings
from prometheus_client import multiprocess


@worker_process_shutdown.connect
def forget_live_gauges(pid: int | None = None, **kwargs: Any) -> None:
    """A prefork child exits: its live gauge samples go (counters stay, as Prometheus expects)."""
    multiprocess.mark_process_dead(pid or os.getpid(), path=str(settings.PROMETHEUS_MULTIPROC_DIR))
