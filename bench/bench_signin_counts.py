"""What counting a wrong password costs, in the database and in Redis: a password spray (wrong
passwords at 200 residents from 100 addresses) by 8 threads in one process, fast password hashing
so that the counting is what is measured. Prints attempts per second and the rows it left in
`login_attempt`. Usage: `.venv/bin/python bench/bench_signin_counts.py [sqlite] [postgresql]`
(Redis at `REDIS_URL`, default redis://127.0.0.1:6379/14, keys under `moralcredit_bench:`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import redis
import sqlalchemy as sa

from bench.harness import database, pg_available

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
PREFIX = "moralcredit_bench:"
RESIDENTS, ADDRESSES, THREADS, ATTEMPTS = 200, 100, 8, 400  # attempts per thread


def spray(url: str, redis_url: str | None) -> tuple[float, int]:
    from community import services, signin
    from community.models import LoginAttempt, User
    from core.db import db, utcnow
    from core.errors import DomainError
    from core.security import hash_password
    from moralcredit import create_app

    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": PREFIX,
            "LOGIN_ADDRESS_FAILURES": 10**6,
        },
    )
    with app.app_context():
        if db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0:
            region = services.create_region(
                actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=utcnow()
            )
            region_id = region.id
            password = hash_password("Bench2026x")
            db.session.execute(
                sa.insert(User),
                [
                    {"phone": f"1392000{i:04d}", "name": "压测", "password_hash": password, "region_id": region_id}
                    for i in range(RESIDENTS)
                ],
            )
            db.session.commit()
        db.session.execute(sa.delete(LoginAttempt))
        db.session.commit()

    def work(n: int) -> None:
        with app.app_context():
            for i in range(ATTEMPTS):
                k = n * ATTEMPTS + i
                with contextlib.suppress(DomainError):
                    signin.authenticate(
                        f"1392000{k % RESIDENTS:04d}", "Wrong2026x", ip=f"10.7.{k % ADDRESSES}.1", now=utcnow()
                    )
            db.session.remove()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    with app.app_context():
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt))
        db.engine.dispose()
    return THREADS * ATTEMPTS / elapsed, rows


def main(kinds: list[str]) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    print(f"sign-in counts: {THREADS} threads x {ATTEMPTS} wrong passwords, {os.cpu_count()} cores")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            for store, redis_url in (("database", None), ("redis", REDIS_URL)):
                keys = list(client.scan_iter(match=f"{PREFIX}*"))
                if keys:
                    client.delete(*keys)
                rate, rows = spray(url, redis_url)
                print(f"{kind:10} counts in {store:8}: {rate:7.0f} attempts/s, {rows} login_attempt rows written")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
