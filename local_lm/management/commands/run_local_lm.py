"""``python manage.py run_local_lm --port 8765 --latency-ms 200 --fail-429-rate 0.5``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from local_lm.server import add_server_arguments, serve_until_signalled, server_from_options


class Command(BaseCommand):
    help = "Serve the local OpenAI-compatible LM on a loopback port until SIGTERM/SIGINT."

    def add_arguments(self, parser: CommandParser) -> None:
        add_server_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            server = server_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        serve_until_signalled(server, self._write)

    def _write(self, line: str) -> None:
        # Flush immediately: wrappers (tests, demo scripts) wait for the URL line on a pipe.
        self.stdout.write(line)
        self.stdout.flush()
