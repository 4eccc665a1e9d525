"""Stats and budget checks over a million finished runs: how long the rollup reads take.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dspex_bench_stats .venv/bin/python -m bench.stats [--runs 1000000]

The database is migrated and filled here (use a throwaway one). The runs are spread over 30
days, 20 programs (3 versions each, each owned by one of 50 users), 2 LMs; they are added to the
rollups with the same upsert the job core's completion path runs, aggregated first (one call per
run would take as long as the runs themselves). Stats never read executions, so how many
execution rows exist does not change these figures; the rollup rows do, and they are all here.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dspex_site.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from cognitive import selectors_usage  # noqa: E402
from cognitive.models import Program, RollupScope, SpendBudget, UsageRollup  # noqa: E402
from cognitive.models.usage import NONE_ID  # noqa: E402
from cognitive.services.budgets import check_run_budget  # noqa: E402
from cognitive.services.usage import _Rows, hour_of, upsert  # noqa: E402


def fill(runs: int) -> tuple[list[Program], object]:
    User = get_user_model()
    users = [User.objects.get_or_create(username=f"bench-{i}")[0] for i in range(50)]
    programs = [
        Program.objects.get_or_create(owner=users[i % 50], name=f"bench-program-{i}")[0] for i in range(20)
    ]
    versions = {p.pk: [uuid.uuid4() for _ in range(3)] for p in programs}
    modules = {p.pk: uuid.uuid4() for p in programs}
    UsageRollup.objects.all().delete()
    now = timezone.now()
    rng = random.Random(7)
    rows = _Rows()
    started = time.perf_counter()
    for _ in range(runs):
        program = rng.choice(programs)
        bucket = hour_of(now - timedelta(minutes=rng.randrange(30 * 24 * 60)))
        version = rng.choice(versions[program.pk])
        status = "completed" if rng.random() < 0.95 else "failed"
        duration = int(rng.lognormvariate(6.5, 0.8))
        prompt, completion = rng.randrange(50, 800), rng.randrange(10, 200)
        cost = (prompt * 0.15 + completion * 0.6) / 1e6
        usage = {"lm_calls": 1, "prompt_tokens": prompt, "completion_tokens": completion, "cost": cost}
        lm = rng.choice(("gpt-4o-mini", "local"))
        owner = program.owner_id
        rows.add((bucket, RollupScope.RUN, owner, program.pk, version, NONE_ID, ""), status=status,
                 duration_ms=duration, usage=usage)
        rows.add((bucket, RollupScope.STEP, owner, program.pk, version, modules[program.pk], ""), status=status,
                 duration_ms=duration, usage=usage)
        rows.add((bucket, RollupScope.LM, owner, program.pk, version, NONE_ID, lm), status=None, duration_ms=None,
                 usage=usage)
    keys = list(rows.rows)
    for start in range(0, len(keys), 500):
        with transaction.atomic():
            upsert({key: rows.rows[key] for key in keys[start:start + 500]})
    print(f"{runs} runs → {UsageRollup.objects.count()} rollup rows in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {UsageRollup._meta.db_table}")  # as autovacuum would after such a load
    SpendBudget.objects.get_or_create(program=programs[0], defaults={"daily_usd": 1000, "monthly_usd": 10000})
    return programs, users[0]


def timed(label: str, call, repeat: int) -> None:
    call()  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<48} p50 {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="measure the rollups already in the database")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if args.keep:
        programs = list(Program.objects.filter(name__startswith="bench-program-").order_by("created_at"))
    else:
        programs, _ = fill(args.runs)
    program = programs[0]
    now = timezone.now()
    client = APIClient()
    client.force_authenticate(program.owner)
    day, month = now - timedelta(hours=24), now - timedelta(days=30)
    timed("program stats, 24 h (selector)", lambda: selectors_usage.program_stats(program.pk, day), args.repeat)
    timed("program stats, 30 d (selector)", lambda: selectors_usage.program_stats(program.pk, month), args.repeat)
    timed("GET /api/programs/{id}/stats/ (24 h, with budget)",
          lambda: client.get(f"/api/programs/{program.pk}/stats/"), args.repeat)
    timed("GET /api/stats/ (user, 24 h)", lambda: client.get("/api/stats/"), args.repeat)
    timed("budget check of a run request", lambda: check_run_budget(owner=program.owner, program=program),
          args.repeat)
    timed("dashboard overview, 7 d", lambda: selectors_usage.overview(now - timedelta(days=7)), args.repeat // 4)


if __name__ == "__main__":
    main()
