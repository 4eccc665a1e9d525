"""Executions per second: the platform (API → Redis → worker → PostgreSQL) next to bare DSPy.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench [--n 300] [--latencies 0,200] [--concurrency 32]

All rows are measured in the same run against the same local LM process, so the ratios mean
something on any machine. The platform row uses a throwaway database of its own (a unique name
on the DATABASE_URL server, dropped at the end), free ports, and real Celery worker processes;
it needs PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The local LM answers to any name; a real model name keeps DSPy's cost lookup on its fast path
# (an unknown name makes DSPy scan its whole price table on every call, in both rows alike).
MODEL = "openai/gpt-4o-mini"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def start_local_lm(port: int, latency_ms: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_lm", "--port", str(port), "--latency-ms", str(latency_ms)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("local LM did not start")


def bare_dspy(url: str, n: int, threads: int) -> tuple[float, float]:
    import dspy

    lm = dspy.LM(MODEL, api_base=url, api_key="local", cache=False, num_retries=0)
    predict = dspy.Predict("question -> answer")
    questions = [f"What is {i} + {i}?" for i in range(n)]
    with dspy.context(lm=lm):
        predict(question="warm up")
        start = time.perf_counter()
        for q in questions:
            predict(question=q)
        loop_rate = n / (time.perf_counter() - start)
        examples = [dspy.Example(question=q).with_inputs("question") for q in questions]
        start = time.perf_counter()
        predict.batch(examples, num_threads=threads, disable_progress_bar=True)
        batch_rate = n / (time.perf_counter() - start)
    return loop_rate, batch_rate


def platform(url: str, n: int, concurrency: int, workers: int) -> dict[str, float]:
    """Submit n runs through the REST API and time until the workers have completed them all.

    Two ways in, measured one after the other on the same workers: n `run/` requests, and
    `run-batch/` requests carrying up to DSPEX_BATCH_MAX inputs each.
    """
    os.environ.update({
        "DSPEX_DEFAULT_LM": MODEL,
        "DSPEX_DEFAULT_LM_API_BASE": url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "testserver",
        "DSPEX_THROTTLE_RATE": "1000000/min",  # measuring the pipeline, not the per-user API limit
    })
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from cognitive.models import Execution, ExecutionStatus, Module, Program
    from cognitive.services.modules import module_create
    from cognitive.services.programs import program_activate, program_create
    from cognitive.services.signatures import signature_create

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    program = Program.objects.filter(owner=user, name="bench").first()
    if program is None:
        if not Module.objects.filter(owner=user, name="qa").exists():
            signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
            module_create(owner=user, name="qa", type="predict", signature=signature)
        program = program_activate(
            program=program_create(owner=user, name="bench", pipeline={"steps": [{"id": "qa", "module": "qa"}]})
        )
    client = APIClient()
    client.force_authenticate(user)

    def submit_runs(questions: list[str]) -> None:
        for question in questions:
            response = client.post(f"/api/programs/{program.pk}/run/", {"input": {"question": question}},
                                   format="json")
            assert response.status_code == 202, response.content

    def submit_batches(questions: list[str]) -> None:
        size = settings.DSPEX_BATCH_MAX
        for start in range(0, len(questions), size):
            inputs = [{"question": q} for q in questions[start:start + size]]
            response = client.post(f"/api/programs/{program.pk}/run-batch/", {"inputs": inputs}, format="json")
            assert response.status_code == 202, response.content

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dspex_site", "worker", "--pool=threads",
             f"--concurrency={concurrency}", "-Q", "executions,default", "--loglevel=WARNING",
             "--without-gossip", "--without-mingle", "-n", f"bench{i}@%h"],
            cwd=ROOT, env=os.environ.copy(),
        )
        for i in range(workers)
    ]
    def wait_for(count: int) -> None:
        while Execution.objects.filter(parent__isnull=True, status=ExecutionStatus.COMPLETED).count() < count:
            failed = Execution.objects.filter(parent__isnull=True, status=ExecutionStatus.FAILED).first()
            if failed is not None:
                raise SystemExit(f"an execution failed: {failed.error}")
            time.sleep(0.05)

    rates = {}
    try:
        # Worker boot, first connections and first compiles are not what we measure (the bare
        # DSPy rows get a warm-up call too).
        warm_up = 2 * concurrency * workers
        submit_batches([f"warm-up {i}" for i in range(warm_up)])
        wait_for(warm_up)
        for label, submit in (("run", submit_runs), ("run-batch", submit_batches)):
            done_before = Execution.objects.filter(parent__isnull=True, status=ExecutionStatus.COMPLETED).count()
            start = time.perf_counter()
            submit([f"What is {i} + 1?" for i in range(n)])
            wait_for(done_before + n)
            rates[label] = n / (time.perf_counter() - start)
        return rates
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def bench_database() -> Iterator[None]:
    """A database of this run's own (a unique name on the server DATABASE_URL names), dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (the bench creates its own database)")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL (the platform row goes through Redis)")
    import psycopg

    name = f"dspex_bench_{os.getpid()}_{int(time.time())}"
    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--latencies", default="0,200")
    parser.add_argument("--concurrency", type=int, default=16, help="threads per worker process")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one per core)")
    args = parser.parse_args()
    with bench_database():
        rows = measure(args)
    report(rows)


def measure(args: argparse.Namespace) -> list[tuple[int, float, float, dict[str, float], str]]:
    rows = []
    for latency in [int(x) for x in args.latencies.split(",")]:
        port = free_port()
        lm = start_local_lm(port, latency)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            loop, batch = bare_dspy(url, args.n if latency == 0 else min(args.n, 50), args.concurrency)
            rates = platform(url, args.n, args.concurrency, args.workers)
            stats = urllib.request.urlopen(f"http://127.0.0.1:{port}/stats").read().decode()
        finally:
            lm.kill()
        rows.append((latency, loop, batch, rates, stats))
    return rows


def report(rows: list[tuple[int, float, float, dict[str, float], str]]) -> None:
    print(f"\n{'LM latency':>10} | {'DSPy loop/s':>11} | {'DSPy batch/s':>12} | {'run/ /s':>8} | {'run-batch/ /s':>13}"
          " | ratios vs loop (run/, run-batch/)")
    for latency, loop, batch, rates, stats in rows:
        print(f"{latency:>8}ms | {loop:>11.1f} | {batch:>12.1f} | {rates['run']:>8.1f} | {rates['run-batch']:>13.1f}"
              f" | {rates['run'] / loop:.2f}, {rates['run-batch'] / loop:.2f}")
        print(f"{'':>10}   local LM: {stats}")

if __name__ == "__main__":
    main()
