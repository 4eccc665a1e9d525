"""Serve /metrics on an internal port without authentication (for Prometheus on a private network)."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand
from prometheus_client import start_http_server

from cognitive.telemetry.exposition import registry


class Command(BaseCommand):
    help = "Serve the Prometheus metrics of every DSPex process on an internal port (no authentication)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=9464)
        parser.add_argument("--addr", default="127.0.0.1", help="bind address; 0.0.0.0 only on a private network")

    def handle(self, *args: Any, port: int, addr: str, **options: Any) -> None:
        server, thread = start_http_server(port, addr=addr, registry=registry())
        self.stdout.write(f"serving metrics on http://{addr}:{port}/metrics")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.shutdown()
            thread.join(5)
