"""Runs `manage.py serve` the way a developer does, in its own process, and sees what it leaves behind."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> set[int]:
    """Every live process below `root` (children in sessions of their own included: they keep their parent)."""
    parents = {int(p.name): _parent_of(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def request(url: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Serve:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, "serve exited:\n" + self.output()
                continue
            self.lines.append(line)
            if predicate(line):
                return line
        raise AssertionError(f"no such line after {timeout} s:\n{self.output()}")

    def value(self, label: str) -> str:
        """The first word after `label` in serve's summary (`  web        http://…/`)."""
        start = next(i for i, line in enumerate(self.lines) if "DSPex is running:" in line)
        summary = [line for line in self.lines[start:] if line.startswith("  ") and not line.startswith("   ")]
        line = next(line for line in summary if line.strip().startswith(label))
        return line.strip().removeprefix(label).split()[0]

    def output(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return "\n".join(self.lines[-200:])

    def interrupt(self, timeout: float = 90) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        finally:
            time.sleep(0.5)  # let the reader drain the last lines
            self.output()

    def kill(self) -> None:
        if self.process.poll() is None:
            for pid in descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(30)


def wait_until_ready(web: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = request(f"{web}readyz")
        if status == 200 or time.monotonic() > deadline:
            return {"status_code": status, **body}
        time.sleep(0.5)


def exercise(serve: Serve, *, timeout: float = 240) -> dict[str, Any]:
    """Wait for serve's summary, check what a developer would, press Ctrl-C; what was seen, for assertions."""
    serve.wait_for_line(lambda line: line.startswith("Press Ctrl-C"), timeout)
    web, token = serve.value("web"), serve.value("API token")
    seen: dict[str, Any] = {"web": web, "healthz": request(f"{web}healthz")}
    seen["readyz"] = wait_until_ready(web, timeout=120)
    seen["api"] = request(f"{web}api/programs/", token)[0]
    seen["processes"] = descendants(serve.process.pid)
    seen["exit_code"] = serve.interrupt()
    seen["left_behind"] = {pid for pid in seen["processes"] if running(pid)}
    return seen
