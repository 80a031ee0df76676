"""Where a check-in, a check-out and a redemption spend their time, in-process: the SQL statements
one request sends (counted with SQLAlchemy's `before_cursor_execute` event) and a pyinstrument
profile (text) of `--repeat` requests of each kind, on a fresh database seeded like
bench_hotpaths.py. Each request is a whole WSGI call of the real app (routing, auth, schema,
service, serialization), built beforehand so that only the server's work is profiled.

Usage: `.venv/bin/python bench/profile_hotpaths.py [sqlite|postgresql] [--repeat N] [--sql] [--flat]`
(`--sql` lists one request's statements; `--flat` adds the functions with the most own time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import app_env, database, pg_available

WARM = 3  # requests of each kind before counting and profiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", nargs="?", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=100, help="requests of each kind to profile (default 100)")
    parser.add_argument("--sql", action="store_true", help="print the statements of one request of each kind")
    parser.add_argument("--flat", action="store_true", help="also print the top functions by own time")
    args = parser.parse_args()
    if args.kind == "postgresql" and not pg_available():
        sys.exit("postgresql: not reachable")
    with database(args.kind) as url:
        os.environ.update(app_env(url))
        profile(args.kind, args.repeat, show_sql=args.sql, flat=args.flat)


def profile(kind: str, repeat: int, *, show_sql: bool, flat: bool) -> None:
    import sqlalchemy as sa
    from pyinstrument import Profiler
    from werkzeug.test import EnvironBuilder

    from bench.seed import seed
    from core.db import db
    from wsgi import app

    pools = {"warm": WARM, "one": 1, "profiled": repeat}
    with app.app_context():
        world = seed(checkin=pools, checkout=pools, residents=20)
        engine = db.engine
    # No app context from here on: each request pushes and tears down its own, as under gunicorn.

    def environ(path: str, bearer: str, body: dict, key: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {bearer}", **({"Idempotency-Key": key} if key else {})}
        return EnvironBuilder(path=path, method="POST", headers=headers, json=body).get_environ()

    scan = {"token": world.venue_token}
    counter = iter(range(10**9))

    def basket() -> dict:
        n = next(counter)
        resident = world.residents[n % len(world.residents)]
        return environ(
            f"/api/v1/stores/{world.store_id}/redemptions",
            world.clerk_bearer,
            {"resident_id": resident, "lines": [{"item_id": world.item_id, "qty": 1}]},
            key=f"profile-{n}",
        )

    kinds: dict[str, Callable[[str], list[dict]]] = {
        "check-in": lambda pool: [environ("/api/v1/checkins", b, scan) for b in world.checkin[pool]],
        "check-out": lambda pool: [environ("/api/v1/checkins", b, scan) for b in world.checkout[pool]],
        "redemption": lambda pool: [basket() for _ in range(pools[pool])],
    }

    statements: list[str] = []
    counting = [False]

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany) -> None:
        if counting[0]:
            statements.append(" ".join(statement.split()))

    summary = []
    for name, build in kinds.items():
        for env in build("warm"):
            call(app, env)
        (one,) = build("one")
        statements.clear()
        counting[0] = True
        status = call(app, one)
        counting[0] = False
        print(f"\n=== {kind}: {name}: one request → {status}, {len(statements)} SQL statements")
        if show_sql:
            for i, statement in enumerate(statements, 1):
                print(f"  {i:2}. {statement[:220]}")
        requests = build("profiled")
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        profiler.start()
        statuses = [call(app, env) for env in requests]
        profiler.stop()
        per_request = (time.perf_counter() - started) / len(requests) * 1000
        bad = [s for s in statuses if not s.startswith("2")]
        print(f"=== {kind}: {name}: {len(requests)} requests profiled, {per_request:.1f} ms each, {len(bad)} not 2xx")
        print(profiler.output_text(unicode=True, color=False))
        if flat:
            print(f"--- {name}: functions by own time")
            print("\n".join(profiler.output_text(unicode=True, color=False, flat=True).splitlines()[:40]))
        summary.append(f"{name:<11} {len(statements):>4} SQL statements   {per_request:6.1f} ms/request in-process")
    print(f"\n{kind}: summary ({repeat} requests each, profiler on)")
    print("\n".join(summary))


def call(app, environ: dict) -> str:
    """One WSGI request; returns its status line."""
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(line)

    body = app(environ, start_response)
    try:
        for _ in body:
            pass
    finally:
        getattr(body, "close", lambda: None)()
    return status[0]


if __name__ == "__main__":
    main()
