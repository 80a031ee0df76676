"""Ledger transfers per second through the service (1 and 2 processes), and the time to verify a
10,000-entry archive, on SQLite and PostgreSQL. Prints figures; asserts nothing.

Each transfer is one unit of work (BEGIN IMMEDIATE on SQLite, row locks on PostgreSQL), as in
production. Usage: `.venv/bin/python bench/bench_ledger.py [sqlite] [postgresql]`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import ROOT, app_env, database, pg_available, run_in_app

SEED = """
from community import services, accounts
from core.db import utcnow
from core.security import hash_password
services.create_region(actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=utcnow())
h = hash_password("Bench2026x")
for i in range(100):
    accounts.register(phone=f"1391000{i:04d}", name="压测", password="", password_hash=h, region_code="4301",
                      now=utcnow())
"""

WORKER = """
import random, sys, time
from wsgi import app
from core.db import unit_of_work, utcnow
from points import ledger
seconds, tag = float(sys.argv[1]), sys.argv[2]
rng = random.Random(tag)
done = 0
with app.app_context():
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        user = rng.randint(1, 100)
        with unit_of_work() as session:
            ledger.transfer(session, source=ledger.issuer_account(session, "region", 1),
                            target=ledger.resident_account(session, user), amount=1, kind="adjustment",
                            key=f"{tag}-{done}", now=utcnow())
        done += 1
print(done)
"""

ARCHIVE = """
import time
from core.db import unit_of_work, utcnow
from points import archive
start = time.perf_counter()
for batch in range(20):
    with unit_of_work() as session:
        for i in range(500):
            archive.append(session, user_id=1, kind="adjustment", occurred_at=utcnow(), now=utcnow(),
                           summary=f"bench {batch}-{i}", points=1, details={"i": i})
built = time.perf_counter() - start
from core.db import db
start = time.perf_counter()
result = archive.verify(db.session, 1)
print(f"{built:.2f} {time.perf_counter() - start:.3f} {result.ok} {result.entries}")
"""


def rate(url: str, processes: int, seconds: float = 8.0) -> float:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(seconds), f"p{processes}-{n}"],
            cwd=ROOT,
            env=app_env(url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    started = time.monotonic()
    outputs = [w.communicate(timeout=seconds + 120) for w in workers]
    elapsed = time.monotonic() - started
    for w, (_, err) in zip(workers, outputs, strict=True):
        if w.returncode != 0:
            raise RuntimeError(err[-2000:])
    total = sum(int(out.strip()) for out, _ in outputs)
    return total / seconds, elapsed


def main(kinds: list[str]) -> None:
    print(f"moralcredit ledger bench: {os.cpu_count()} cores, 1-point transfers to 100 residents, 8 s per figure")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            run_in_app(url, SEED)
            for processes in (1, 2):
                per_second, _ = rate(url, processes)
                print(f"{kind:10}: {processes} process{'es' if processes > 1 else ''}: {per_second:8.1f} transfers/s")
            check = run_in_app(
                url, "from points import ledger\nfrom core.db import db\nprint(ledger.invariant_problems(db.session))"
            ).strip()
            print(f"{kind:10}: ledger invariants after the run: {check}")
            built, verified, ok, entries = run_in_app(url, ARCHIVE).split()
            print(f"{kind:10}: archive of {entries} entries: appended in {built} s, verified in {verified} s (ok={ok})")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
