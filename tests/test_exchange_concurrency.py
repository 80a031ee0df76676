"""Concurrent redemptions never overspend or oversell: threads, two processes, and a process
killed in the middle of a redemption load (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from community.models import User
from core.db import db, utcnow
from exchange import inventory, redemption, stores
from exchange.models import Item, Redemption, RedemptionLine, StockMovement
from points import ledger
from points.models import ArchiveEntry, Transfer
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh
from tests.test_core_concurrency import run_threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    return world


def residents(n: int, points: int = 50) -> list[int]:
    ids = []
    for i in range(n):
        person = f.user("43010101", name=f"居民{i}")
        f.fund(person, points)
        ids.append(person.id)
    return ids


def one_point_item(w, stock: int) -> int:
    return stores.add_item(
        actor=None, store_id=w.stores["s1"].id, name="牙膏", unit="支", points_price=1, stock=stock, now=utcnow()
    ).id


def assert_whole(item_id: int | None = None) -> None:
    """Every redemption is complete (transfer, lines, stock movements, archive entry) and the
    ledgers balance; nothing half-written exists."""
    fresh()
    assert ledger.invariant_problems(db.session) == []
    assert inventory.invariant_problems(db.session) == []
    for r in db.session.scalars(sa.select(Redemption)):
        assert db.session.get(Transfer, r.transfer_id).amount == r.total_points
        taken = db.session.scalar(
            sa.select(sa.func.sum(StockMovement.delta)).where(
                StockMovement.redemption_id == r.id, StockMovement.kind == "redemption"
            )
        )
        assert -taken == sum(ln.qty for ln in r.lines) > 0
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(ArchiveEntry)
                .where(ArchiveEntry.cause_type == "redemption", ArchiveEntry.cause_id == str(r.id))
            )
            == 1
        )
    orphans = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Transfer)
        .where(Transfer.kind == "redemption", ~Transfer.id.in_(sa.select(Redemption.transfer_id)))
    )
    assert orphans == 0


def test_fifty_concurrent_redemptions_of_stock_ten_sell_exactly_ten(app, w):
    item_id = one_point_item(w, 10)
    people = residents(50)
    clerk_token = f.token(w.users["clerk"])
    url = f"/api/v1/stores/{w.stores['s1'].id}/redemptions"

    def buy(i: int) -> int:
        return (
            app.test_client()
            .post(
                url,
                json={"resident_id": people[i], "lines": [{"item_id": item_id, "qty": 1}]},
                headers={"Authorization": f"Bearer {clerk_token}", "Idempotency-Key": f"buy-{i}"},
            )
            .status_code
        )

    statuses = run_threads(app, 50, buy)
    assert sorted(statuses) == [201] * 10 + [422] * 40
    fresh()  # the test's own read snapshot predates the threads' writes (SQLite)
    assert db.session.get(Item, item_id).stock == 0
    assert_whole()


def test_twenty_concurrent_retries_of_one_key_redeem_once(app, w):
    token = f.token(w.users["clerk"])
    body = {"resident_id": w.users["resident"].id, "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}

    url = f"/api/v1/stores/{w.stores['s1'].id}/redemptions"

    def retry(i: int):
        return app.test_client().post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "one-basket"},
        )

    responses = run_threads(app, 20, retry)
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_json()["id"] for r in responses}) == 1
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Redemption)) == 1
    assert ledger.balance(db.session, w.users["resident"].id) == 90
    assert_whole()


def test_one_resident_buying_at_once_from_many_threads_never_overspends(app, w):
    person = residents(1, points=30)[0]
    item_id = one_point_item(w, 100)

    clerk_id, store_id = w.users["clerk"].id, w.stores["s1"].id

    def buy(i: int):
        try:
            return redemption.redeem(
                actor=db.session.get(User, clerk_id),
                store_id=store_id,
                lines=[redemption.Line(item_id, 4)],
                key=f"k{i}",
                resident_id=person,
                now=utcnow(),
            ).id
        except Exception as exc:
            return getattr(exc, "code", repr(exc))

    results = run_threads(app, 12, buy)
    assert results.count("insufficient_points") == 12 - 7  # 7 × 4 = 28 of the 30 points
    fresh()

    assert ledger.balance(db.session, person) == 2
    assert_whole()


WORKER = """
import sys
from moralcredit import create_app
from core.db import utcnow
from core.errors import DomainError
from exchange import redemption
from community.models import User
url, store, clerk, item, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
people = [int(x) for x in sys.argv[6].split(",")]
app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
ok = 0
with app.app_context():
    from core.db import db
    actor = db.session.get(User, clerk)
    for n, person in enumerate(people):
        try:
            redemption.redeem(actor=actor, store_id=store, lines=[redemption.Line(item, 1)], key=f"{prefix}-{person}",
                              resident_id=person, now=utcnow())
            ok += 1
        except DomainError:
            pass
        print(n, flush=True)
print("ok", ok, flush=True)
"""


def spawn(backend, w, item_id, prefix, people):
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            backend.url,
            str(w.stores["s1"].id),
            str(w.users["clerk"].id),
            str(item_id),
            prefix,
            ",".join(map(str, people)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.slow
def test_two_processes_never_oversell(app, backend, w):
    item_id = one_point_item(w, 10)
    people = residents(30)
    db.session.commit()
    workers = [spawn(backend, w, item_id, "p", people[n::2]) for n in range(2)]
    outputs = [p.communicate(timeout=180) for p in workers]
    assert all(p.returncode == 0 for p in workers), [err[-1500:] for _, err in outputs]
    assert sum(int(out.strip().splitlines()[-1].split()[1]) for out, _ in outputs) == 10
    fresh()
    assert db.session.get(Item, item_id).stock == 0
    assert_whole()


@pytest.mark.slow
def test_a_process_killed_mid_load_leaves_every_redemption_complete_or_absent(app, backend, w):
    item_id = one_point_item(w, 500)
    people = residents(60)
    db.session.commit()
    worker = spawn(backend, w, item_id, "kill", people)
    deadline = time.monotonic() + 60
    seen = 0
    while seen < 15 and time.monotonic() < deadline:
        if worker.stdout.readline():
            seen += 1
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert_whole()
    before = {r.idempotency_key: r.id for r in db.session.scalars(sa.select(Redemption))}
    assert 15 <= len(before) < 60
    # After the restart the clerk retries every basket: the done ones return their first result.
    retry = spawn(backend, w, item_id, "kill", people)
    _, err = retry.communicate(timeout=180)
    assert retry.returncode == 0, err[-1500:]
    fresh()
    after = {r.idempotency_key: r.id for r in db.session.scalars(sa.select(Redemption))}
    assert len(after) == 60 and all(after[k] == v for k, v in before.items())
    assert db.session.get(Item, item_id).stock == 440
    assert db.session.scalar(sa.select(sa.func.sum(RedemptionLine.qty))) == 60
    assert_whole()
