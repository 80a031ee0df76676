"""Statistics at city scale: seed 1% and 100% of Yiyang on PostgreSQL, bring the rollups up to date
(`flask jobs run stats-refresh`), then time the statistics API through gunicorn as the city's admin.

What is timed is first reads: every request asks a question nobody asked before (its own region
among the city, counties and townships, and its own period), so the per-`as_of` result cache never
answers, and gunicorn starts after the refresh. The periods are those the dashboards ask: this year
so far, a calendar month, last year. Lines marked "any period" ask 60-to-120-day windows across
month ends instead, which only the per-resident rows can answer (the fallback); they are printed
apart and are not in the last line. Also prints the seed time, the database size and the refresh
times. Asserts nothing.

Each scale keeps its database (`moralcredit_bench_pct1`, `moralcredit_bench_city`); with `--reuse`
a database that already holds its seeded scale is migrated and refreshed, not seeded again (the
seed time printed is the one recorded when it was seeded).

Usage: `.venv/bin/python bench/bench_stats.py [--reuse] [pct1] [city]` (default both; `county` too).
The last line is `stats p95 at full scale: N ms` (the slowest query's p95 at the largest scale).
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import time
from datetime import date, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import BIN, PG_ADMIN, ROOT, app_env, load, migrate, pg_available, run_in_app, serve

SAMPLES = 40  # timed requests per query (after two to warm the worker up), each a new question
QUERY_SECONDS = 60.0  # at most this long per query
TOKEN = """
import sqlalchemy as sa
from community import accounts
from community.models import User
from core.db import db, utcnow
admin = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
print(accounts.api_token(admin, utcnow())[0])
"""
PLACES = """
import sqlalchemy as sa
from community.models import Region
from core import clock
from core.db import db
print(clock.today().isoformat())
for level in ("city", "county", "township"):
    codes = db.session.scalars(sa.select(Region.code).where(Region.level == level).order_by(Region.code).limit(40))
    print(level, " ".join(codes))
"""
SIZE = "SELECT pg_database_size(current_database())"


def flask(url: str, *args: str, timeout: float = 3 * 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=app_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _admin(sql: str, database: str = "postgres", autocommit: bool = True):
    import psycopg

    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url, autocommit=autocommit) as conn:
        return conn.execute(sql).fetchall() if sql.lstrip().upper().startswith("SELECT") else conn.execute(sql)


def seeded_seconds(name: str, scale: str) -> float | None:
    """The recorded seed time when database `name` holds a finished seed of `scale`, else None."""
    if not _admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
        return None
    if not _admin("SELECT to_regclass('bench_seed') IS NOT NULL", name)[0][0]:
        return None
    found = _admin(f"SELECT seconds FROM bench_seed WHERE scale = '{scale}'", name)
    return float(found[0][0]) if found else None


def prepare(scale: str, reuse: bool) -> tuple[str, float] | None:
    """The migrated, seeded database of `scale` and its seed time (None if the seed failed)."""
    name = f"moralcredit_bench_{scale}"
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    recorded = seeded_seconds(name, scale) if reuse else None
    if recorded is not None:
        migrate(url)
        print(f"{scale}: reusing {name} (seeded earlier in {recorded:.0f} s)")
        return url, recorded
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    migrate(url)
    started = time.perf_counter()
    seeded = flask(url, "demo", "seed", "--scale", scale)
    seconds = time.perf_counter() - started
    if seeded.returncode != 0:
        print(f"{scale}: the seed failed: {(seeded.stderr or seeded.stdout)[-2000:]}")
        return None
    _admin(
        "CREATE TABLE bench_seed (scale text PRIMARY KEY, seconds double precision NOT NULL, "
        "seeded_at timestamptz NOT NULL DEFAULT now())",
        name,
    )
    _admin(f"INSERT INTO bench_seed (scale, seconds) VALUES ('{scale}', {seconds})", name)
    print(f"{scale}: seeded {name} in {seconds:.0f} s")
    print("\n".join(f"    {line}" for line in seeded.stdout.strip().splitlines()[-12:]))
    return url, seconds


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def questions(
    today: date, places: dict[str, list[str]]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(region code, from, to) for the dashboards' periods, and for any-period windows: in an order
    that gives each request of a query a new pair."""
    regions = places.get("city", []) + places.get("county", []) + places.get("township", [])
    periods = [(date(today.year, 1, 1), today), (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31))]
    month = today.replace(day=1)
    for _ in range(12):
        periods.append((month, min(today, _month_end(month))))
        month = (month - timedelta(days=1)).replace(day=1)
    standard = [(code, a.isoformat(), b.isoformat()) for (a, b), code in zip(periods * 10, itertools.cycle(regions))]
    standard = list(dict.fromkeys(standard))
    draw = random.Random(12)
    windows = []
    for code in itertools.islice(itertools.cycle(regions), 4 * SAMPLES):
        last = today - timedelta(days=draw.randint(0, 200))
        first = last - timedelta(days=draw.randint(60, 120))
        windows.append((code, first.isoformat(), last.isoformat()))
    return standard, windows


QUERIES = {
    "summary": "/api/v1/stats/summary?region_code={code}&from={first}&to={last}",
    "by-region": "/api/v1/stats/by-region?region_code={code}&from={first}&to={last}",
    "monthly": "/api/v1/stats/monthly?region_code={code}&from={first}&to={last}",
    "rankings/volunteers": "/api/v1/stats/rankings/volunteers?region_code={code}&from={first}&to={last}&limit=20",
    "flags": "/api/v1/stats/flags?region_code={code}&from={first}&to={last}",
}


def time_query(address: str, headers: dict, template: str, asked: list[tuple[str, str, str]], offset: int):
    """Two requests to warm the worker, then up to SAMPLES timed ones, each a question not asked before."""
    paths = [template.format(code=c, first=a, last=b) for c, a, b in asked[offset:] + asked[:offset]]
    warm = load(address, lambda n, i: ("GET", paths[i], None, headers), clients=1, max_requests=2)
    timed = paths[2 : 2 + SAMPLES]
    result = load(
        address,
        lambda n, i: ("GET", timed[i], None, headers),
        clients=1,
        seconds=QUERY_SECONDS,
        max_requests=len(timed),
    )
    return warm, result


def measure(scale: str, reuse: bool) -> tuple[float | None, float | None]:
    """Seed (or reuse) `scale`, refresh, time the queries: the worst p95 in ms of the dashboards'
    periods and of any-period windows (None if none could be timed)."""
    prepared = prepare(scale, reuse)
    if prepared is None:
        return None, None
    url, _seconds = prepared
    size = int(_admin(SIZE, url.rsplit("/", 1)[1])[0][0])
    print(f"{scale}: database size {size / 2**20:,.0f} MB (pg_database_size)")
    for job in ("stats-refresh", "stats-refresh"):
        started = time.perf_counter()
        refreshed = flask(url, "jobs", "run", job)
        if refreshed.returncode != 0:
            print(f"{scale}: {job} failed: {(refreshed.stderr or refreshed.stdout)[-1500:]}")
            return None, None
        print(f"{scale}: {job} in {time.perf_counter() - started:.1f} s: {refreshed.stdout.strip()[-300:]}")

    lines = run_in_app(url, PLACES).strip().splitlines()
    today = date.fromisoformat(lines[0])
    places = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    standard, windows = questions(today, places)
    token = run_in_app(url, TOKEN).strip()
    headers = {"Authorization": f"Bearer {token}"}
    worst: dict[str, float | None] = {"standard": None, "any": None}
    with serve(url, workers=2) as server:
        print(f"{scale}: {'query':34} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'n':>4}")
        for (name, template), (label, asked) in itertools.product(
            QUERIES.items(), (("standard", standard), ("any", windows))
        ):
            offset = list(QUERIES).index(name) * (SAMPLES + 2)
            warm, result = time_query(server.address, headers, template, asked, offset % max(1, len(asked)))
            title = name if label == "standard" else f"{name} (any period)"
            if warm.errors or result.errors:
                print(f"{scale}: {title:34} errors: warm-up {warm.errors}, timed {result.errors}: see {server.log}")
                continue
            p50, p95, top = result.percentile(50), result.percentile(95), max(result.latencies) * 1000
            print(f"{scale}: {title:34} {p50:9.1f} {p95:9.1f} {top:9.1f} {result.requests:>4}")
            worst[label] = p95 if worst[label] is None else max(worst[label], p95)
    return worst["standard"], worst["any"]


def main(argv: list[str]) -> None:
    reuse = "--reuse" in argv
    scales = [a for a in argv if not a.startswith("--")] or ["pct1", "city"]
    print(f"moralcredit statistics bench: {os.cpu_count()} cores, PostgreSQL, scales {', '.join(scales)}")
    if not pg_available():
        print("postgresql: not reachable, skipped")
        print("stats p95 at full scale: n/a (no PostgreSQL)")
        return
    results = {scale: measure(scale, reuse) for scale in scales}
    largest = scales[-1]
    label = "full scale" if largest == "city" else f"scale {largest}"
    standard, anywhere = results[largest]
    if len(scales) > 1 and standard is not None and results[scales[0]][0]:
        print(f"stats p95 {largest} / {scales[0]}: {standard / results[scales[0]][0]:.1f}x")
    if anywhere is not None:
        print(f"stats p95 at {label}, any period (not the dashboards'): {anywhere:.0f} ms")
    if standard is None:
        print(f"stats p95 at {label}: n/a (no statistics query answered)")
    else:
        print(f"stats p95 at {label}: {standard:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
