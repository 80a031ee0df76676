"""One door into points: other domains move points only through `points.awards`, and a use case
holds the resident's account once, however many movements and entries it writes."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from core.db import db, unit_of_work, utcnow
from points import archive, awards, ledger
from points.models import Account
from tests.authz import build_world
from tests.factories import fresh
from tests.test_query_budgets import confirmed_running_activity, counted
from volunteer import attendance, tokens

ROOT = Path(__file__).resolve().parent.parent
# What volunteer and exchange may use of points: the door, the separation-of-duties rule, the pure
# rule arithmetic and its lookup, and the hook that adds a check to `ledger check` (wiring). Never
# the tables, the ledger or the archive themselves.
ALLOWED = {"points", "points.awards", "points.duties", "points.rules", "points.policies", "points.cli"}


def imports_of(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("points"):
                for alias in node.names:
                    module = node.module if node.module != "points" else f"points.{alias.name}"
                    found.add((path.name, module))
            elif isinstance(node, ast.Import):
                found |= {(path.name, a.name) for a in node.names if a.name.startswith("points")}
    return found


@pytest.mark.parametrize("package", ["volunteer", "exchange"])
def test_volunteer_and_exchange_reach_points_only_through_its_door(package):
    wrong = sorted((name, module) for name, module in imports_of(package) if module not in ALLOWED)
    assert wrong == [], f"{package} imports points internals: {wrong}"


@pytest.fixture
def w(app):
    return build_world()


def test_a_check_out_holds_the_residents_account_once(w):
    activity = confirmed_running_activity(w, "resident")
    came = utcnow() - timedelta(minutes=90)
    attendance.scan_venue_code(user=w.users["resident"], token=tokens.rotating(activity, came)[0], now=came)
    fresh()
    token = tokens.rotating(activity, utcnow())[0]
    with counted() as found:
        row, action = attendance.scan_venue_code(user=w.users["resident"], token=token, now=utcnow())
    assert action == "check_out" and row.points > 0
    reads = [s for s in found.sql if s.lstrip().startswith("SELECT account.id, account.kind")]
    assert len(reads) == 1, found.report()  # the hold; the ledger and the archive reuse it
    fresh()
    assert archive.verify(db.session, w.users["resident"].id).ok


def test_a_held_account_follows_every_movement_without_a_reload(w):
    """Three movements and their entries in one unit of work: the held object stays equal to the
    row (balance, archive anchor), so nothing needs reading again, and the ledger is sound."""
    resident = w.users["resident"]
    with unit_of_work() as session:
        held = ledger.hold(session, resident.id)
        awards.adjust(
            session,
            user_id=resident.id,
            region_id=resident.region_id,
            points=100,
            key="door-fund",
            now=utcnow(),
            actor_id=w.users["admin"].id,
            reason="测试",
            details={},
        )
        store, clerk = w.stores["s1"].id, w.users["clerk"].id
        for n in range(3):
            paid = awards.debit_redemption(
                session,
                user_id=resident.id,
                store_id=store,
                amount=10,
                key=f"door-{n}",
                now=utcnow(),
                actor_id=clerk,
            )
            awards.record(
                session,
                move=paid.move,
                actor_id=None,
                user_id=resident.id,
                kind="redemption",
                occurred_at=utcnow(),
                now=utcnow(),
                summary="测试",
                points=-10,
            )
        assert ledger.hold(session, resident.id) is held
        in_memory = (held.balance, held.archive_count, held.archive_head)
    fresh()
    row = db.session.get(Account, held.id)
    assert (row.balance, row.archive_count, row.archive_head) == in_memory
    assert row.balance == 70
    assert ledger.invariant_problems(db.session) == []
    assert archive.verify(db.session, resident.id).ok
