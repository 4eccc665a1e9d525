"""getProgram latency: the original design's GraphQL query, with 100,000 executions behind the program.

    .venv/bin/python -m bench.graphql [--runs 100000] [--requests 200]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.graphql

The query is the original design's, verbatim (a page of 10 completed executions, the program's
modules with their metrics). It goes through the whole Django stack in process (middleware,
token authentication, strawberry, the ORM), so no port is opened; network time is not in it.

Without `DATABASE_URL` the bench starts a PostgreSQL server of its own (initdb in a temporary
folder, a free port) and removes it at the end, so nothing shared can restart under it. With
`DATABASE_URL` it creates its own database on that server (named after this process, dropped at
the end), so it never touches a database someone else uses. Each run of
the program has one step execution of its module, as a one-step pipeline leaves behind, so the
module's metrics aggregate 100,000 rows too. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta

GET_PROGRAM = """
query GetProgram($id: ID!) {
  getProgram(id: $id) {
    id name status
    modules { id name type performanceMetrics }
    executions(first: 10, filter: { status: { eq: COMPLETED } }) {
      edges { node { id input output duration metrics } }
    }
  }
}
"""


# The same without the modules' metrics, which aggregate every step execution of each module.
GET_PROGRAM_WITHOUT_METRICS = GET_PROGRAM.replace(" performanceMetrics", "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free port; yields its admin URL. Root runs it as `postgres`."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (found[-1] if found else None)
    if initdb is None:
        raise SystemExit("no initdb found: set DATABASE_URL to a PostgreSQL server instead")
    bin_dir = os.path.dirname(initdb)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = tempfile.mkdtemp(prefix="dspex-bench-pg-")
    data = os.path.join(folder, "data")
    if as_user:
        shutil.chown(folder, "postgres")
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run([*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust"], check=True, **quiet)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, os.path.join(bin_dir, "pg_ctl"), "-D", data, "-o", options, "-w", "start"],
                   check=True, **quiet)
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, os.path.join(bin_dir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"], **quiet)
        shutil.rmtree(folder, ignore_errors=True)


def own_database(url: str) -> tuple[str, str]:
    """(admin url, bench url): a database of our own on the same server."""
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (the bench creates its own database)")
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"dspex_bench_graphql_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return url, f"{base}/{name}"


def drop_database(admin_url: str, bench_url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    name = bench_url.rpartition("/")[2]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fill(runs: int) -> tuple[object, str]:
    """A user, a one-step program and `runs` runs (90% completed), each with its step execution."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from cognitive.models import Execution, ExecutionStatus
    from cognitive.services.modules import module_create
    from cognitive.services.programs import program_activate, program_create
    from cognitive.services.signatures import signature_create

    user = get_user_model().objects.create(username="bench")
    token = Token.objects.create(user=user).key
    signature = signature_create(owner=user, name="qa", spec="question: str -> answer: str")
    module = module_create(owner=user, name="qa", type="predict", signature=signature)
    program = program_activate(program=program_create(
        owner=user, name="bench",
        pipeline={"steps": [{"id": "qa", "module": "qa", "inputs": {"question": "$input.question"}}]},
    ))
    start = timezone.now() - timedelta(days=30)
    chunk = 5000
    for offset in range(0, runs, chunk):
        parents, steps = [], []
        for i in range(offset, min(offset + chunk, runs)):
            status = ExecutionStatus.FAILED if i % 10 == 0 else ExecutionStatus.COMPLETED
            created = start + timedelta(seconds=i * 20)
            values = {
                "owner": user, "program": program, "input": {"question": f"What is {i} + 1?"},
                "output": {"answer": str(i + 1)}, "status": status, "duration_ms": 200 + i % 50,
                "metrics": {"lm_calls": 1, "total_tokens": 120, "cost": 0.0001},
            }
            parent = Execution(**values, finished_at=created)
            parents.append(parent)
            steps.append(Execution(**values, module=module, parent=parent, step_id="qa", finished_at=created))
        Execution.objects.bulk_create(parents)
        Execution.objects.bulk_create(steps)
    # created_at is auto_now_add: bulk_create stamped now; spread the rows over time as real ones are
    # (a step shares its run's time, as it does when a worker writes it right after starting the run).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cognitive_execution SET created_at = finished_at WHERE finished_at IS NOT NULL"
        )
        cursor.execute("VACUUM ANALYZE cognitive_execution")
    return program, token


def measure(program: object, token: str, requests: int, query: str) -> list[float]:
    from django.test import Client

    client = Client()
    body = {"query": query, "variables": {"id": str(program.pk)}}
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}

    def once() -> float:
        started = time.perf_counter()
        response = client.post("/graphql/", body, content_type="application/json", **headers)
        elapsed = (time.perf_counter() - started) * 1000
        data = response.json()
        assert response.status_code == 200 and "errors" not in data, data
        assert len(data["data"]["getProgram"]["executions"]["edges"]) == 10
        return elapsed

    for _ in range(20):  # connections, caches, the first parse
        once()
    return [once() for _ in range(requests)]


def run(url: str, args: argparse.Namespace) -> None:
    admin_url, bench_url = own_database(url)
    os.environ.update({
        "DATABASE_URL": bench_url, "DEBUG": "0", "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
        "ALLOWED_HOSTS": "testserver",
    })
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        program, token = fill(args.runs)
        print(f"filled {args.runs} runs (+ their steps) in {time.perf_counter() - started:.0f} s")
        print(f"\n{'operation (' + format(args.runs, ',') + ' runs behind the program)':<56} | {'p50':>7} | {'p95':>7}")
        for label, query in (
            ("getProgram, 10 executions (the original design's query)", GET_PROGRAM),
            ("  the same without modules' performanceMetrics", GET_PROGRAM_WITHOUT_METRICS),
        ):
            times = sorted(measure(program, token, args.requests, query))
            p50, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
            print(f"{label:<56} | {p50:>5.1f}ms | {p95:>5.1f}ms", flush=True)
    finally:
        drop_database(admin_url, bench_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if url:
        run(url, args)
        return
    with private_server() as server_url:
        run(server_url, args)


if __name__ == "__main__":
    main()
