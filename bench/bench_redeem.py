"""Redemptions per second and p50/p99 through gunicorn, on SQLite and PostgreSQL, at 8 and 32
concurrent clients; then the invariant check (ledger balanced, stock = movements). Prints figures.

200 residents with plenty of points, one store, one item with plenty of stock; each request is a
new basket (its own Idempotency-Key) for a random resident. 4 gunicorn workers, 2 threads each.
Usage: `.venv/bin/python bench/bench_redeem.py [sqlite] [postgresql]`.
"""

from __future__ import annotations

import os
import random
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import database, gunicorn, load, pg_available, run_in_app

SEED = """
from community import services, accounts
from core.db import unit_of_work, utcnow
from core.security import hash_password
from exchange import stores
from points import ledger
now = utcnow()
services.create_region(actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=now)
store = stores.create_store(actor=None, name="压测超市", region_code="4301", now=now)
item = stores.add_item(actor=None, store_id=store.id, name="牙膏", unit="支", points_price=1, stock=1_000_000, now=now)
h = hash_password("Bench2026x")
clerk = accounts.register(phone="13800009999", name="店员", password="", password_hash=h, region_code="4301", now=now)
services.grant_role(actor=None, user_id=clerk.id, role="clerk", scope_type="store", scope_id=store.id, now=now)
ids = []
for i in range(200):
    u = accounts.register(phone=f"1391000{i:04d}", name="居民", password="", password_hash=h, region_code="4301",
                          now=now)
    with unit_of_work() as session:
        ledger.transfer(session, source=ledger.issuer_account(session, "region", u.region_id),
                        target=ledger.resident_account(session, u.id), amount=1_000_000, kind="adjustment",
                        key=f"fund-{u.id}", now=now)
    ids.append(u.id)
token, _ = accounts.api_token(clerk, now)
print(store.id, item.id, token, ",".join(map(str, ids)))
"""

CHECK = """
from core.db import db
from exchange import inventory
from exchange.models import Redemption
from points import ledger
import sqlalchemy as sa
print(len(ledger.invariant_problems(db.session)), len(inventory.invariant_problems(db.session)),
      db.session.scalar(sa.select(sa.func.count()).select_from(Redemption)))
"""


def make_basket(store: str, item: str, people: list[int], headers: dict[str, str]):
    """Each request is a new basket for a random resident, with an Idempotency-Key of its own."""

    def basket(n: int, i: int):
        return (
            "POST",
            f"/api/v1/stores/{store}/redemptions",
            {"resident_id": random.choice(people), "lines": [{"item_id": int(item), "qty": 1}]},
            {**headers, "Idempotency-Key": uuid.uuid4().hex},
        )

    return basket


def main(kinds: list[str]) -> None:
    print(f"moralcredit redemption bench: gunicorn -w 4 --threads 2, {os.cpu_count()} cores, 6 s per figure")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            store, item, token, ids = run_in_app(url, SEED).split()
            people = [int(x) for x in ids.split(",")]
            headers = {"Authorization": f"Bearer {token}"}

            basket = make_basket(store, item, people, headers)

            with gunicorn(url, workers=4, threads=2) as address:
                load(address, basket, clients=4, seconds=1)  # warm-up
                for clients in (8, 32):
                    result = load(address, basket, clients=clients, seconds=6)
                    print(result.line(f"{kind}: {clients} clients"))
            ledger_problems, stock_problems, count = run_in_app(url, CHECK).split()
            print(
                f"{kind}: after {count} redemptions: ledger problems {ledger_problems}, stock problems {stock_problems}"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
