"""The monthly report (每月通报) and the archive root it publishes: written once per region and month,
never changed (the database refuses), and the root finds a rewrite that chains and anchors alone
cannot."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from core import clock
from core.db import db, unit_of_work, utcnow
from core.ddl import drop_append_only, make_append_only
from core.jobs import run_job
from points import archive, roots
from points.models import Account, ArchiveEntry, ArchiveRoot
from stats import reports
from stats.models import Report
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, tokens


def rfc6962(leaves: list[bytes]) -> bytes:
    """The Merkle tree hash of RFC 6962 §2.1, written as the RFC states it (recursively)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return roots.node(rfc6962(leaves[:split]), rfc6962(leaves[split:]))


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.integers(1, 50), st.text("0123456789abcdef", min_size=64, max_size=64)),
        max_size=40,
    )
)
def test_the_streamed_tree_is_the_rfc_6962_tree(heads):
    tree = roots.Tree()
    leaves = [roots.leaf(*head) for head in heads]
    for digest in leaves:
        tree.add(digest)
    assert tree.root() == rfc6962(leaves).hex() and tree.leaves == len(heads)


@pytest.fixture
def w(app):
    w = build_world()
    activity = make_activity(w, start_in=timedelta(hours=-5), hours=4, allow_walk_in=True)
    for who in ("resident", "target"):
        for at in (activity.starts_at, activity.starts_at + timedelta(hours=2)):
            attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, at)[0], now=at)
    return w


class _Op:
    """Just enough of Alembic's `op` for core.ddl, on a plain connection."""

    def __init__(self, connection):
        self.connection = connection

    def get_bind(self):
        return self.connection

    def execute(self, statement):
        self.connection.execute(sa.text(statement))


def rewrite_whole_chain(user_id: int) -> None:
    """What someone with database access could do: rewrite an archive entry, its hash, the chain
    after it and the anchor, consistently, so that the chain and anchor checks pass."""
    db.session.remove()
    with db.engine.begin() as connection:
        drop_append_only(_Op(connection), "archive_entry")
    try:
        with unit_of_work() as session:
            entries = session.scalars(
                sa.select(ArchiveEntry).where(ArchiveEntry.user_id == user_id).order_by(ArchiveEntry.seq)
            ).all()
            previous = entries[0].prev_hash
            for entry in entries:
                entry.summary = entry.summary + "（改）" if entry.seq == 1 else entry.summary
                entry.prev_hash = previous
                entry.hash = previous = archive.entry_hash(entry)
            session.execute(
                sa.update(Account)
                .where(Account.kind == "resident", Account.owner_id == user_id)
                .values(archive_head=previous)
            )
    finally:
        db.session.remove()
        with db.engine.begin() as connection:
            make_append_only(_Op(connection), "archive_entry")


def test_the_published_root_finds_a_consistent_rewrite_that_the_chain_does_not(app, w):
    published = roots.publish(now=utcnow())
    assert published.leaves == 2 and roots.problems(db.session) == []
    assert roots.publish(now=utcnow()).id == published.id  # nothing new: the same root, not a second
    rewrite_whole_chain(w.users["resident"].id)
    fresh()
    assert archive.verify(db.session, w.users["resident"].id).ok  # the chain and anchor cannot tell
    problems = roots.problems(db.session)
    assert len(problems) == 1 and published.root in problems[0]
    result = app.test_cli_runner().invoke(args=["ledger", "check"])
    assert result.exit_code == 1 and "archive root" in result.output


def test_archive_verify_prints_the_root_and_checks_the_published_one(app, w):
    result = app.test_cli_runner().invoke(args=["archive", "verify"])
    assert result.exit_code == 0 and "archive root now:" in result.output
    roots.publish(now=utcnow())
    result = app.test_cli_runner().invoke(args=["archive", "verify"])
    assert result.exit_code == 0 and "matches" in result.output, result.output


def test_the_monthly_job_writes_each_county_and_city_once_with_the_root(app, client, w):
    next_month = (clock.today().replace(day=28) + timedelta(days=4)).replace(day=1)
    on_the_first = clock.day_start(next_month) + timedelta(hours=1, minutes=30)
    assert run_job("monthly-report", now=on_the_first) == "wrote 2 monthly reports"
    assert run_job("monthly-report", now=on_the_first + timedelta(minutes=5)) == "wrote 0 monthly reports"
    fresh()
    written = db.session.scalars(sa.select(Report).order_by(Report.region_id)).all()
    assert [(r.region.code, r.month) for r in written] == [
        ("4300", clock.today().replace(day=1)),
        ("4301", clock.today().replace(day=1)),
    ]
    county = written[1]
    root = db.session.scalar(sa.select(ArchiveRoot))
    assert (county.archive_root, county.archive_leaves) == (root.root, root.leaves) == (root.root, 2)
    assert county.figures["summary"]["participations"] == 2
    assert [r["points"] for r in county.rankings["volunteers"]] == [20, 20]

    listed = client.get("/api/v1/reports", headers=f.bearer(w.users["admin"])).get_json()
    assert [item["region_code"] for item in listed["items"]] == ["4301"] and listed["total"] == 1
    item = listed["items"][0]
    assert item["month"] == clock.today().strftime("%Y-%m") and item["archive_root"] == root.root
    assert set(item) >= {"id", "region_code", "month", "figures", "rankings", "flags", "archive_root", "created_at"}
    one = client.get(f"/api/v1/reports/{county.id}", headers=f.bearer(w.users["admin"]))
    assert one.status_code == 200 and one.get_json() == item
    assert client.get("/api/v1/reports", headers=f.bearer(w.users["reviewer"])).get_json()["total"] == 0
    assert client.get(f"/api/v1/reports/{written[0].id}", headers=f.bearer(w.users["admin"])).status_code == 404


@pytest.mark.parametrize("table", ["stats_report", "archive_root"])
def test_a_written_report_or_root_cannot_be_changed_or_deleted(app, w, table):
    reports.write_month(now=utcnow(), month=clock.today().replace(day=1))
    fresh()
    for statement in (f"UPDATE {table} SET created_at = created_at", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as connection:
            connection.exec_driver_sql(statement)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() >= 1
