"""Request rates of `GET /healthz` and `POST /api/v1/auth/token` under gunicorn, SQLite and PostgreSQL.

Production settings (scrypt password hashing), 4 gunicorn workers on this 2-core machine, 8
closed-loop clients, 5 s per figure. The per-address sign-in limit is lifted for the run (all
load comes from 127.0.0.1). Usage: `.venv/bin/python bench/bench_auth.py [sqlite] [postgresql]`.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import database, gunicorn, load, pg_available, run_in_app

SEED = """
from community import services, accounts
from core.db import utcnow
services.create_region(actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=utcnow())
for i in range(8):
    accounts.register(phone=f"1391000{i:04d}", name="压测", password="Bench2026x", region_code="4301", now=utcnow())
"""


def main(kinds: list[str]) -> None:
    print(f"moralcredit auth bench: gunicorn -w 4, 8 clients, {os.cpu_count()} cores")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            run_in_app(url, SEED)
            # Only failed sign-ins are limited, so these successful ones need no lifted limit.
            with gunicorn(url, workers=4) as address:
                load(address, lambda n, i: ("GET", "/healthz", None, {}), clients=8, seconds=1)  # warm-up
                health = load(address, lambda n, i: ("GET", "/healthz", None, {}), clients=8)
                print(health.line(f"{kind}: GET /healthz"))
                token = load(
                    address,
                    lambda n, i: (
                        "POST",
                        "/api/v1/auth/token",
                        {"phone": f"1391000{n:04d}", "password": "Bench2026x"},
                        {},
                    ),
                    clients=8,
                )
                print(token.line(f"{kind}: POST /api/v1/auth/token (scrypt)"))


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
