"""Each Celery worker records a heartbeat row every few seconds from a thread of its own, for `/readyz`.

A thread rather than the worker's event loop: a slow or unreachable database delays the next
heartbeat, never the consumption of tasks. Connected in `CognitiveConfig.ready`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


class WorkerHeartbeat:
    def __init__(self, *, node: str, queues: list[str], every: float) -> None:
        self.node, self.queues, self.every = node, queues, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dspex-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)

    def _run(self) -> None:
        from cognitive.services.health import worker_heartbeat, worker_stopped

        try:
            while True:
                self._call(worker_heartbeat, node=self.node, queues=self.queues)
                if self._stop.wait(self.every):
                    break
            self._call(worker_stopped, node=self.node)
        finally:
            connection.close()

    @staticmethod
    def _call(record: Any, **kwargs: Any) -> None:
        close_old_connections()  # a connection broken by a database restart is replaced, as per request
        try:
            record(**kwargs)
        except Exception:
            logger.warning("could not record the worker heartbeat", exc_info=True)


_running: WorkerHeartbeat | None = None


@worker_ready.connect
def start_heartbeat(sender: Any = None, **kwargs: Any) -> None:
    global _running
    queues = sorted(sender.app.amqp.queues.consume_from)
    _running = WorkerHeartbeat(node=sender.hostname, queues=queues, every=settings.DSPEX_WORKER_HEARTBEAT_SECONDS)
    _running.start()


@worker_shutdown.connect
def stop_heartbeat(**kwargs: Any) -> None:
    global _running
    if _running is not None:
        _running.stop()
        _running = None
