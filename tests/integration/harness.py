"""Real processes for integration tests: a throwaway redis-server, Celery workers and beat.

They talk to the same PostgreSQL test database as the test (committed data only), so these
tests need `DATABASE_URL` (PostgreSQL) and a `redis-server` binary; without them they skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """A redis-server that keeps nothing on disk, so a restart really loses everything in it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10, what="redis-server to start")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


def worker_env(*, broker_url: str, lm_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "DSPEX_DEFAULT_LM": "openai/local",
        "DSPEX_DEFAULT_LM_API_BASE": lm_url,
        "DSPEX_EXECUTION_LEASE_SECONDS": "3",
        "DSPEX_RETRY_BASE_SECONDS": "0",
        "DSPEX_RETRY_MAX_SECONDS": "2",
        "DSPEX_SWEEP_EVERY_SECONDS": "1",
        "DSPEX_REAP_EVERY_SECONDS": "1",
        "DSPEX_SWEEP_REPUBLISH_AFTER_SECONDS": "3",
        "SECRET_KEY": "integration-tests",
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


class Processes:
    """Starts and always stops the Celery processes of one test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.procs)}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dspex_site", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def worker(self, *, concurrency: int = 16, name: str = "w") -> subprocess.Popen:
        return self._spawn(
            "worker",
            [
                "worker", "--pool=threads", f"--concurrency={concurrency}", "-Q", "executions,default",
                "--loglevel=WARNING", "-n", f"{name}{len(self.procs)}@%h", "--without-gossip", "--without-mingle",
            ],
        )

    def beat(self) -> subprocess.Popen:
        schedule = self.log_dir / "beat-schedule"
        return self._spawn("beat", ["beat", "--loglevel=WARNING", "-s", str(schedule)])

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the whole process group: no cleanup, no acks, like a machine losing power."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log"))


def restart_postgresql(down_for: float = 2.0) -> None:
    """Stop the cluster the tests use (fast mode: every connection is cut), then start it again."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "--mode", "fast"], check=True
    )
    time.sleep(down_for)
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=True)
    wait_for(
        lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode == 0,
        timeout=30, what="PostgreSQL to accept connections",
    )
    connection.close()  # this process's connection died with the server; the next query reconnects


def can_restart_postgresql() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("DSPEX_TEST_RESTART_POSTGRES") == "1"
