"""``python manage.py serve`` (``make serve``): the whole development stack in one terminal.

Migrates, creates an admin login and API token the first time, then runs the web server, an
executions worker, an optimization worker, beat and (when the default LM is the bundled one) the
local LM, with their logs prefixed by name, until Ctrl-C stops them all. It runs on whatever the
environment configures: SQLite and a folder broker by default, DATABASE_URL / REDIS_URL otherwise.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http.request import validate_host

from cognitive.devstack import AdminLogin, Child, Supervisor, ensure_admin

_STARTUP_TIMEOUT_S = 180
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own loopback URLs)
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Command(BaseCommand):
    help = "Run web, an executions worker, an optimization worker, beat and the local LM until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server listens on")
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument(
            "--lm-port", type=int, default=None,
            help="local LM port (default: the port of DSPEX_DEFAULT_LM_API_BASE, 8765 unless set)",
        )
        parser.add_argument("--no-local-lm", action="store_true", help="do not start the bundled local LM")
        parser.add_argument("--admin", default="admin", help="username of the admin login created on first run")
        parser.add_argument("--concurrency", type=int, default=8, help="threads of the executions worker")
        parser.add_argument("--noreload", action="store_true", help="do not restart the web server on code changes")
        parser.add_argument(
            "--loglevel", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="workers' and beat's log level (INFO also logs every task, the maintenance ones every few seconds)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Listening on every address is reached (and probed) on loopback.
        reach = "127.0.0.1" if options["host"] in ("0.0.0.0", "::") else options["host"]  # noqa: S104
        web = f"http://{reach}:{options['port']}"
        if not validate_host(reach, settings.ALLOWED_HOSTS):
            raise CommandError(f"ALLOWED_HOSTS does not include {reach}: set ALLOWED_HOSTS, or DEBUG=1 "
                               "(`make serve` does)")
        if not _port_free(options["host"], options["port"]):
            raise CommandError(f"port {options['port']} on {options['host']} is in use; choose another with --port")
        lm_url, lm_child = self._local_lm(options)
        self._say("Migrating the database…")
        call_command("migrate", interactive=False, verbosity=0)
        login = ensure_admin(options["admin"])

        stop = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
        supervisor = Supervisor(self._children(options, lm_url, lm_child), self._write)
        supervisor.start()
        try:
            probes = [f"{web}/healthz", *([lm_url.removesuffix("/v1") + "/health"] if lm_child else [])]
            self._wait_until_up(supervisor, stop, probes)
            if not stop.is_set():
                supervisor.announce(self._summary(web, lm_url, login))
            while not stop.wait(0.5):
                exited = supervisor.exited()
                if exited:
                    raise CommandError(f"{exited[0]} stopped (exit code {exited[1]}); stopping the others")
        finally:
            self._say("Stopping every process…")
            supervisor.stop()
            self._say("Stopped.")
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- what runs

    def _local_lm(self, options: dict[str, Any]) -> tuple[str, bool]:
        """The default LM's base URL as the children will see it, and whether to start the local LM for it."""
        configured = urlsplit(settings.DSPEX_DEFAULT_LM_API_BASE)
        bundled = settings.DSPEX_DEFAULT_LM == "openai/local" and configured.hostname in _LOOPBACK
        if options["no_local_lm"] or not bundled:
            base = settings.DSPEX_DEFAULT_LM_API_BASE or "(the provider's)"
            self._say(f"Default LM: {settings.DSPEX_DEFAULT_LM} at {base}")
            return settings.DSPEX_DEFAULT_LM_API_BASE, False
        port = options["lm_port"] or configured.port or 8765
        if not _port_free("127.0.0.1", port):
            raise CommandError(
                f"port {port} for the local LM is in use (another `make serve` or `make local-lm`?); "
                "choose another with --lm-port"
            )
        return f"http://127.0.0.1:{port}/v1", True

    def _children(self, options: dict[str, Any], lm_url: str, lm_child: bool) -> list[Child]:
        python = sys.executable
        env = {"DSPEX_DEFAULT_LM_API_BASE": lm_url} if lm_url else {}
        celery = [python, "-m", "celery", "-A", "dspex_site"]
        quiet = ["--without-gossip", "--without-mingle", f"--loglevel={options['loglevel']}"]
        web = [python, "manage.py", "runserver", f"{options['host']}:{options['port']}"]
        children = [
            Child("web", [*web, "--noreload"] if options["noreload"] else web, env),
            Child("executions", [*celery, "worker", "--pool=threads", f"--concurrency={options['concurrency']}",
                                 "-Q", "executions,default", "-n", "executions@%h", *quiet], env),
            Child("optimization", [*celery, "worker", "--pool=prefork", "--concurrency=1", "-Q", "optimization",
                                   "-n", "optimization@%h", *quiet], env),
            Child("beat", [*celery, "beat", f"--loglevel={options['loglevel']}"], env),
        ]
        if lm_child:
            port = str(urlsplit(lm_url).port)
            children.insert(0, Child("local-lm", [python, "-m", "local_lm", "--port", port]))
        return children

    # -- output

    def _wait_until_up(self, supervisor: Supervisor, stop: threading.Event, urls: list[str]) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        pending = list(urls)
        while pending and not stop.is_set():
            pending = [url for url in pending if not _answers(url)]
            exited = supervisor.exited()
            if exited:
                raise CommandError(f"{exited[0]} stopped while starting (exit code {exited[1]})")
            if time.monotonic() > deadline:
                raise CommandError(f"not answering after {_STARTUP_TIMEOUT_S} s: {', '.join(pending)}")
            stop.wait(0.3)

    def _summary(self, web: str, lm_url: str, login: AdminLogin) -> list[str]:
        lines = [
            self.style.SUCCESS("DSPex is running:"),
            f"  web        {web}/",
            f"  admin      {web}/admin/",
            f"  API docs   {web}/api/docs/",
            f"  health     {web}/healthz   readiness {web}/readyz",
            f"  LM         {lm_url}",
        ]
        if login.password:
            lines.append(f"  login      {login.username} / {login.password}   (created now; shown only this once)")
        else:
            lines.append(f"  login      {login.username}   (created earlier; `manage.py changepassword "
                         f"{login.username}` sets a new password)")
        return [*lines, f"  API token  {login.token}   (Authorization: Token …)", "Press Ctrl-C to stop them all."]

    def _say(self, line: str) -> None:
        self._write(line)

    def _write(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
