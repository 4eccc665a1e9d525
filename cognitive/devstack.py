"""The development stack behind `manage.py serve`: child processes, their logs with a prefix, one way to stop.

Each child runs in a session of its own, so a terminal's Ctrl-C reaches only the supervisor. It asks
each child to stop (SIGTERM), waits a grace period, then kills whatever is left in each child's
process group (a reloader's server process, pool processes), so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token


@dataclass(frozen=True)
class Child:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str | None  # only when it was created just now; afterwards only its hash exists
    token: str


def ensure_admin(username: str) -> AdminLogin:
    """A superuser `username` with an API token, created the first time only."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
    token, _ = Token.objects.get_or_create(user=user)
    return AdminLogin(username=username, password=password, token=token.key)


class Supervisor:
    def __init__(self, children: Sequence[Child], write: Callable[[str], None], *, grace_seconds: float = 15) -> None:
        self.children = list(children)
        self.grace_seconds = grace_seconds
        self._write = write
        self._write_lock = threading.Lock()
        self._width = max(len(child.name) for child in self.children)
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self._readers: list[threading.Thread] = []

    def say(self, name: str, line: str) -> None:
        with self._write_lock:
            self._write(f"{name:>{self._width}} | {line}")

    def announce(self, lines: Sequence[str]) -> None:
        """Lines of the supervisor's own, kept together between the children's."""
        with self._write_lock:
            for line in lines:
                self._write(line)

    def start(self) -> None:
        for child in self.children:
            process = subprocess.Popen(  # noqa: S603 (argv built by `serve` from this interpreter and fixed names)
                list(child.argv),
                env={**os.environ, "PYTHONUNBUFFERED": "1", **child.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
            self.processes[child.name] = process
            reader = threading.Thread(target=self._relay, args=(child.name, process.stdout), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _relay(self, name: str, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.say(name, line.rstrip("\n"))

    def exited(self) -> tuple[str, int] | None:
        """The first child that has stopped on its own, with its exit code."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        for process in self.processes.values():
            # The leader only: a Celery worker stops its own pool processes after finishing their tasks.
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for name, process in self.processes.items():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(name, f"still running after {self.grace_seconds:.0f} s: killed")
        for process in self.processes.values():
            # Also whatever the leader left behind in its group (a reloader's server, pool processes).
            _signal_group(process, signal.SIGKILL)
            process.wait()
        for reader in self._readers:
            reader.join(timeout=5)


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(process.pid, signum)
