"""The city-sized demo in bulk (`flask demo seed --scale`), at a size a test can afford: what it
writes must be exactly what the services would have written, so every ledger invariant, the stock
ledger and every resident's archive chain check out, and the app goes on working on top of it.

And the jobs that walk every resident do it page by page: with a tiny page size, every resident
is visited exactly once across the page boundaries."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from citydemo import seed as city_seed
from community import accounts
from community.models import Department, Household, Region, RoleGrant, User
from core import clock
from core.db import db, keyset_pages, utcnow
from core.notify import Notification
from exchange import inventory
from exchange.models import Item, Redemption, StockMovement, Store
from points import archive, expiry, ledger
from points.models import Account, ArchiveEntry, RegionPolicy, Transfer
from tests.factories import fresh
from volunteer import attendance, signups
from volunteer.models import Activity, Attendance, Signup


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


@pytest.fixture
def city(app):
    result = city_seed.seed("test", progress=False)
    fresh()
    return result


def test_a_tiny_city_passes_every_ledger_stock_and_archive_check(city):
    assert city.startswith("益阳市 (test)")
    assert ledger.invariant_problems(db.session) == []
    assert inventory.invariant_problems(db.session) == []
    checked = [(user_id, result) for user_id, result in archive.verify_all(db.session)]
    assert [user_id for user_id, result in checked if not result.ok] == []
    volunteers = db.session.scalars(sa.select(Account.owner_id).where(Account.kind == "resident")).all()
    assert sorted(user_id for user_id, _ in checked) == sorted(volunteers) and len(volunteers) > 10
    # Every credit and every basket has its entry; the anchors hold the chains' heads.
    assert count(ArchiveEntry) == count(Attendance) + count(Redemption)
    assert count(Transfer) == db.session.scalar(
        sa.select(sa.func.count()).select_from(Attendance).where(Attendance.points > 0)
    ) + count(Redemption)
    assert count(Redemption) > 0 and count(StockMovement) > count(Item)
    total = db.session.scalar(sa.select(sa.func.sum(Account.archive_count)))
    assert total == count(ArchiveEntry)


def test_the_tiny_city_has_the_shape_of_yiyang(city):
    regions = dict(db.session.execute(sa.select(Region.level, sa.func.count()).group_by(Region.level)).all())
    assert regions["city"] == 1 and regions["county"] == 6 and regions["grid"] == 12
    codes = {r.level: r.code for r in db.session.scalars(sa.select(Region))}
    assert codes["city"] == "430900"
    assert [len(codes[level]) for level in ("county", "township", "grid")] == [6, 9, 14]
    assert all(
        len(r.code) == 12
        for r in db.session.scalars(sa.select(Region).where(Region.level.in_(("village", "community"))))
    )
    grid = db.session.scalar(sa.select(Region).where(Region.level == "grid").order_by(Region.id))
    assert grid.path == f"{grid.parent.path}{grid.id}/" and grid.depth == 4
    names = {d.name for d in db.session.scalars(sa.select(Department))}
    assert any(n.endswith("派出所") for n in names) and any(n.endswith("委员会") for n in names)
    residents = db.session.scalars(sa.select(User).where(~User.phone.like("138%"))).all()
    assert len(residents) == 300 and count(Household) >= 60
    assert len({u.phone for u in residents}) == 300 and all(len(u.phone) == 11 for u in residents)
    assert all(u.volunteer_no == f"ZY{u.id:08d}" and u.household_id for u in residents)
    admin = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
    grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == admin.id))
    assert (grant.role, grant.scope_id) == (
        "admin",
        db.session.scalar(sa.select(Region.id).where(Region.code == "430900")),
    )
    clerks = db.session.scalar(sa.select(sa.func.count()).select_from(RoleGrant).where(RoleGrant.role == "clerk"))
    assert clerks == count(Store) == 6


def test_the_app_carries_on_after_the_bulk_rows(city, client):
    # The id sequences moved past the bulk ids: new rows of every kind go in.
    now = utcnow()
    user = accounts.register(
        phone="13912345678", name="新来的", password="Newcomer2026x", region_code="43090200100101", now=now
    )
    assert user.id > db.session.scalar(sa.select(sa.func.max(User.id)).where(User.id != user.id))
    token = client.post("/api/v1/auth/token", json={"phone": "13800000001", "password": "Demo2026"})
    assert token.status_code == 200, token.get_json()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.get_json()['token']}"})
    assert me.status_code == 200


def test_a_second_bulk_seed_is_refused_and_the_cli_names_the_scales(city, app):
    runner = app.test_cli_runner()
    again = runner.invoke(args=["demo", "seed", "--scale", "test"])
    assert again.exit_code == 1 and "already holds people" in again.output
    wrong = runner.invoke(args=["demo", "seed", "--scale", "planet"])
    assert wrong.exit_code == 2 and "city, county, pct1, test" in wrong.output


def test_the_cli_seeds_the_tiny_city(app):
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--scale", "test"])
    assert result.exit_code == 0, result.output
    assert "益阳市 (test)" in result.output and "rows/s" in result.output
    fresh()
    assert count(User) > 300 and count(Attendance) > 100
    checked = app.test_cli_runner().invoke(args=["ledger", "check"])
    assert checked.exit_code == 0 and checked.output.strip().endswith(": 0 problems"), checked.output


# --- walks in pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_keyset_pages_visit_each_row_once_in_order(city, size):
    every = db.session.scalars(sa.select(User.id).order_by(User.id)).all()
    pages = list(keyset_pages(db.session, sa.select(User.id), User.id, size=size))
    seen = [row[0] for page in pages for row in page]
    assert seen == every
    assert all(len(page) <= size for page in pages) and len(pages) == -(-len(every) // size)


def test_resident_pages_cross_boundaries_without_loss_or_repeat(city):
    owners = set(db.session.scalars(sa.select(Account.owner_id).where(Account.kind == "resident")))
    # Archive rows of residents without an account (a removed account): inside the owners' id
    # range and beyond the last owner. The walk must still reach them, for verify to report them.
    others = db.session.scalars(sa.select(User.id).where(User.id.not_in(owners)).order_by(User.id)).all()
    strays = [next(u for u in others if u > min(owners)), others[-1]]
    assert strays[-1] > max(owners)
    for user_id in strays:
        db.session.add(
            ArchiveEntry(
                user_id=user_id,
                seq=1,
                kind="adjustment",
                occurred_at=utcnow(),
                recorded_at=utcnow(),
                summary="无账户的档案",
                points=0,
                prev_hash="0" * 64,
                hash="f" * 64,
            )
        )
    db.session.commit()
    everyone = sorted(owners | set(strays))
    for size in (1, 2, 5, len(owners), len(owners) + 1):
        pages = list(archive.resident_pages(db.session, size=size))
        seen = [user_id for page in pages for user_id in page]
        assert seen == everyone, size
    broken = {user_id for user_id, result in archive.verify_all(db.session, size=3) if not result.ok}
    assert broken == set(strays)


def test_verify_archives_job_checks_each_resident_once_with_tiny_pages(city, app, monkeypatch):
    from core.jobs import run_job

    app.config["JOB_BATCH_SIZE"] = 4
    seen: list[int] = []
    real = archive.verify

    def counting(session, user_id):
        seen.append(user_id)
        return real(session, user_id)

    monkeypatch.setattr(archive, "verify", counting)
    result = run_job("verify-archives")
    owners = sorted(db.session.scalars(sa.select(Account.owner_id).where(Account.kind == "resident")))
    assert seen == owners and len(owners) > 4
    assert result == f"checked {len(owners)} archives, 0 broken, 0 ledger problems"


def test_expiry_lapses_each_holder_once_with_tiny_pages(city, monkeypatch):
    fresh()
    root = db.session.scalar(sa.select(Region).where(Region.code == "430900"))
    db.session.merge(RegionPolicy(region_id=root.id, expiry="annual", settlement_month=1, settlement_day=1))
    db.session.commit()
    holders = sorted(
        db.session.scalars(sa.select(Account.owner_id).where(Account.kind == "resident", Account.balance > 0))
    )
    visited: list[int] = []
    real = expiry._lapse

    def counting(session, user_id, **kwargs):
        visited.append(user_id)
        return real(session, user_id, **kwargs)

    monkeypatch.setattr(expiry, "_lapse", counting)
    # Two years on, every point earned in the seeded year is old: all of it lapses, once.
    settlement = clock.day_start(date(clock.today(utcnow()).year + 2, 1, 1)) + timedelta(hours=1)
    before = db.session.scalar(sa.select(sa.func.sum(Account.balance)).where(Account.kind == "resident"))
    lapsed = expiry.apply(now=settlement, size=3)
    assert visited == holders and len(holders) > 3
    assert lapsed == before
    assert expiry.apply(now=settlement, size=3) == 0  # idempotent
    fresh()
    assert ledger.invariant_problems(db.session) == []
    assert all(result.ok for _, result in archive.verify_all(db.session, size=2))


def test_missed_check_outs_close_in_pages(city):
    fresh()
    activity = db.session.scalar(sa.select(Activity).order_by(Activity.id))
    came = set(db.session.scalars(sa.select(Attendance.user_id).where(Attendance.activity_id == activity.id)))
    people = db.session.scalars(sa.select(User.id).where(User.id.not_in(came)).order_by(User.id).limit(7)).all()
    for user_id in people:
        db.session.add(
            Attendance(
                activity_id=activity.id,
                user_id=user_id,
                checked_in_at=activity.starts_at,
                scanned_in_at=activity.starts_at,
                status="open",
                method_in="venue",
                updated_at=activity.starts_at,
            )
        )
    db.session.commit()
    assert attendance.close_missed_checkouts(now=utcnow(), size=2) == 7
    assert attendance.close_missed_checkouts(now=utcnow(), size=2) == 0
    fresh()
    statuses = db.session.scalars(
        sa.select(Attendance.status).where(Attendance.activity_id == activity.id, Attendance.user_id.in_(people))
    ).all()
    assert sorted(statuses) == ["auto"] * 7


def test_reminders_queue_once_per_volunteer_across_pages(city):
    fresh()
    template = db.session.scalar(sa.select(Activity).order_by(Activity.id))
    now = utcnow()
    soon = Activity(
        title="明日河道清理",
        category="环境整治",
        department_id=template.department_id,
        region_id=template.region_id,
        address="村部",
        starts_at=now + timedelta(hours=20),
        ends_at=now + timedelta(hours=22),
        status="published",
        secret="0" * 32,
        created_by_id=template.created_by_id,
    )
    db.session.add(soon)
    db.session.flush()
    people = db.session.scalars(sa.select(User.id).order_by(User.id).limit(9)).all()
    for user_id in people:
        db.session.add(Signup(activity_id=soon.id, user_id=user_id, status="confirmed"))
    db.session.commit()
    assert signups.queue_reminders(now=now, size=2) == 9
    assert signups.queue_reminders(now=now, size=4) == 9  # a repeat queues nothing new (keys)
    fresh()
    keys = db.session.scalars(sa.select(Notification.key).where(Notification.kind == "reminder")).all()
    assert sorted(keys) == sorted(f"remind:day:{soon.id}:{u}" for u in people)
