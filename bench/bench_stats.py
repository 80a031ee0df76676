"""Statistics at city scale: seed 1% and 100% of Yiyang on PostgreSQL (a fresh database each),
bring the rollups up to date (`flask jobs run stats-refresh`), then time the statistics API
(p50/p95 through gunicorn, as the city's admin) for the summary, by-region, monthly, volunteer
rankings and flags queries. Also prints the seed time and the database size. Asserts nothing.

Usage: `.venv/bin/python bench/bench_stats.py [pct1] [city]` (default both; `county` works too).
The last line is `stats p95 at full scale: N ms` (the slowest query's p95 at the largest scale).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import BIN, ROOT, app_env, database, load, pg_available, run_in_app, serve

SAMPLES = 20  # timed requests per query (after two to warm up), fewer if a query is slow
QUERY_SECONDS = 30.0  # at most this long per query
TOKEN = """
import sqlalchemy as sa
from community import accounts
from community.models import User
from core.db import db, utcnow
admin = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
print(accounts.api_token(admin, utcnow())[0])
"""
SIZE = """
import sqlalchemy as sa
from core.db import db
print(db.session.scalar(sa.text("SELECT pg_database_size(current_database())")))
"""


def flask(url: str, *args: str, timeout: float = 3 * 3600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=app_env(url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def queries() -> list[tuple[str, str]]:
    today = time.strftime("%Y-%m-%d")
    year_ago = time.strftime("%Y-%m-%d", time.localtime(time.time() - timedelta(days=366).total_seconds()))
    span = f"region_code=430900&from={year_ago}&to={today}"
    return [
        ("summary", f"/api/v1/stats/summary?{span}"),
        ("by-region", "/api/v1/stats/by-region?region_code=430900"),
        ("monthly", f"/api/v1/stats/monthly?{span}"),
        ("rankings/volunteers", f"/api/v1/stats/rankings/volunteers?{span}&limit=20"),
        ("flags", f"/api/v1/stats/flags?{span}"),
    ]


def measure(scale: str) -> float | None:
    """Seed `scale`, refresh, time the queries; the worst p95 in ms (None if none could be timed)."""
    with database("postgresql") as url:
        started = time.perf_counter()
        seeded = flask(url, "demo", "seed", "--scale", scale)
        seed_seconds = time.perf_counter() - started
        if seeded.returncode != 0:
            print(f"{scale}: the seed failed: {(seeded.stderr or seeded.stdout)[-2000:]}")
            return None
        print(f"{scale}: seeded in {seed_seconds:.0f} s")
        print("\n".join(f"    {line}" for line in seeded.stdout.strip().splitlines()))
        size = int(run_in_app(url, SIZE).strip())
        print(f"{scale}: database size {size / 2**20:,.0f} MB (pg_database_size)")

        started = time.perf_counter()
        refreshed = flask(url, "jobs", "run", "stats-refresh")
        if refreshed.returncode != 0 and "unknown job" in (refreshed.stderr + refreshed.stdout):
            print(f"{scale}: no stats-refresh job on this branch (the stats package is not here): rollups skipped")
        elif refreshed.returncode != 0:
            print(f"{scale}: stats-refresh failed: {(refreshed.stderr or refreshed.stdout)[-1500:]}")
        else:
            print(f"{scale}: stats-refresh in {time.perf_counter() - started:.1f} s: {refreshed.stdout.strip()[-200:]}")

        token = run_in_app(url, TOKEN).strip()
        headers = {"Authorization": f"Bearer {token}"}
        worst = None
        with serve(url, workers=2) as server:
            print(f"{scale}: {'query':22} {'p50 ms':>9} {'p95 ms':>9} {'n':>4}  status")
            for name, path in queries():
                warm = load(server.address, lambda n, i, p=path: ("GET", p, None, headers), clients=1, max_requests=2)
                if warm.errors:
                    status = _status(server.address, path, headers)
                    print(f"{scale}: {name:22} {'-':>9} {'-':>9} {0:>4}  HTTP {status}: not measured")
                    continue
                result = load(
                    server.address,
                    lambda n, i, p=path: ("GET", p, None, headers),
                    clients=1,
                    seconds=QUERY_SECONDS,
                    max_requests=SAMPLES,
                )
                p50, p95 = result.percentile(50), result.percentile(95)
                print(f"{scale}: {name:22} {p50:9.1f} {p95:9.1f} {result.requests:>4}  errors={result.errors}")
                if not result.errors:
                    worst = p95 if worst is None else max(worst, p95)
        return worst


def _status(address: str, path: str, headers: dict[str, str]) -> int:
    import http.client

    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def main(scales: list[str]) -> None:
    print(f"moralcredit statistics bench: {os.cpu_count()} cores, PostgreSQL, scales {', '.join(scales)}")
    if not pg_available():
        print("postgresql: not reachable, skipped")
        print("stats p95 at full scale: n/a (no PostgreSQL)")
        return
    results = {scale: measure(scale) for scale in scales}
    largest = scales[-1]
    label = "full scale" if largest == "city" else f"scale {largest}"
    worst = results[largest]
    if worst is None:
        print(f"stats p95 at {label}: n/a (no statistics query answered)")
    else:
        print(f"stats p95 at {label}: {worst:.0f} ms")


if __name__ == "__main__":
    main(sys.argv[1:] or ["pct1", "city"])
