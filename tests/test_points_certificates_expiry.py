"""Certificates anyone can check (masked), and the optional annual expiry of old points."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from core.db import db, unit_of_work, utcnow
from points import archive, expiry, ledger, policies
from points.models import Transfer
from tests import factories as f
from tests.authz import build_world
from tests.test_points_archive import serve


@pytest.fixture
def world(app):
    return build_world()


def test_a_certificate_lists_service_and_verifies_publicly_with_masked_data(client, world):
    resident = world.users["resident"]
    serve(resident, world.departments["d1"].id, "attendance:1:1", hours=2)
    today = utcnow().date()
    issued = client.post(
        "/api/v1/me/certificates",
        headers=f.bearer(resident),
        json={"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()},
    )
    assert issued.status_code == 201
    code = issued.get_json()["code"]
    assert issued.get_json()["service_hours"] == 2.0 and issued.get_json()["url"].endswith(f"/certificates/{code}")
    check = client.get(f"/api/v1/certificates/{code}").get_json()
    assert check["valid"] is True and check["service_hours"] == 2.0
    assert check["resident"]["name"] == "张**" and check["resident"]["volunteer_no"] == resident.volunteer_no
    assert check["period"] == {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
    page = client.get(f"/certificates/{code}").get_data(as_text=True)
    assert "证明有效" in page and "张小明" not in page and resident.phone not in page
    assert client.get("/api/v1/certificates/NOPE").status_code == 404
    wrong = client.post(
        "/api/v1/me/certificates", headers=f.bearer(resident), json={"from": "2026-05-02", "to": "2026-05-01"}
    )
    assert wrong.status_code == 422


def test_the_printable_certificate_shows_manual_hours_separately(client, world):
    from points.rules import Rule, credit

    resident = world.users["resident"]
    start = utcnow().replace(microsecond=0) - timedelta(days=2)
    from points import awards

    awards.credit_service(
        user_id=resident.id,
        department_id=world.departments["d1"].id,
        manual=True,
        credit=credit(start, start + timedelta(hours=1), start, start + timedelta(hours=2), Rule()),
        key="manual:1",
        now=utcnow(),
        activity={"title": "补录：清扫", "organizer": "城关派出所"},
    )
    serve(resident, world.departments["d1"].id, "attendance:1:1", hours=2)
    today = utcnow().date()
    from points import certificates

    cert = certificates.issue(user=resident, period_from=today - timedelta(days=7), period_to=today, now=utcnow())
    assert (cert.service_minutes, cert.manual_minutes, cert.records) == (180, 60, 2)
    from tests.authz import sign_in_page

    sign_in_page(client, resident)
    page = client.get(f"/my/certificates/{cert.code}").get_data(as_text=True)
    assert "其中补录 1.0 小时" in page and "城关派出所" in page


def credit_at(user, points, when: datetime, key: str):
    with unit_of_work() as session:
        ledger.transfer(
            session,
            source=ledger.issuer_account(session, "region", user.region_id),
            target=ledger.resident_account(session, user.id),
            amount=points,
            kind="adjustment",
            key=key,
            now=when,
        )


def spend_at(user, points, when: datetime, key: str):
    with unit_of_work() as session:
        ledger.transfer(
            session,
            source=ledger.resident_account(session, user.id),
            target=ledger.store_account(session, 1),
            amount=points,
            kind="redemption",
            key=key,
            now=when,
        )


def test_annual_expiry_lapses_old_points_oldest_first_once(world):
    county = world.regions["county"]
    policies.set_policy(actor=None, region=county, now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1)
    user = world.users["resident"]
    credit_at(user, 30, datetime(2024, 6, 1, tzinfo=UTC), "old")  # before 2025-01-01: lapses on 2026-03-01
    credit_at(user, 20, datetime(2025, 6, 1, tzinfo=UTC), "recent")
    spend_at(user, 10, datetime(2025, 7, 1, tzinfo=UTC), "spent")  # oldest first: comes out of the old 30

    lapse = expiry.next_lapse(user, date(2026, 2, 1))
    assert (lapse.points, lapse.cutoff, lapse.settles_on) == (20, date(2025, 1, 1), date(2026, 3, 1))
    settlement = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
    assert expiry.apply(now=settlement) == 20
    assert expiry.apply(now=settlement) == 0  # idempotent
    assert expiry.apply(now=settlement - timedelta(days=1)) == 0  # not the settlement day
    assert ledger.balance(db.session, user.id) == 20
    [entry] = [e for e in archive.entries(db.session, user.id) if e.kind == "expiry"]
    assert entry.points == -20 and "过期" in entry.summary
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == "expiry")) == 1
    assert ledger.invariant_problems(db.session) == []


def test_no_expiry_by_default(world):
    user = world.users["resident"]
    credit_at(user, 30, datetime(2020, 6, 1, tzinfo=UTC), "old")
    assert expiry.next_lapse(user, date(2026, 2, 1)) is None
    assert expiry.apply(now=datetime(2026, 1, 1, 4, tzinfo=UTC)) == 0
    assert ledger.balance(db.session, user.id) == 30


def test_rules_are_found_by_region_and_category_and_versioned(world):
    county, t1 = world.regions["county"], world.regions["t1"]
    policies.set_rule(actor=None, region=county, category=None, now=utcnow(), points_per_hour=8)
    policies.set_rule(actor=None, region=t1, category="平安巡逻", now=utcnow(), points_per_hour=12)
    assert policies.rule_for(db.session, world.regions["g1"], "平安巡逻").points_per_hour == 12
    assert policies.rule_for(db.session, world.regions["g1"], "环境整治").points_per_hour == 8
    assert policies.rule_for(db.session, world.regions["g2"], "平安巡逻").points_per_hour == 8
    newer = policies.set_rule(actor=None, region=county, category=None, now=utcnow(), points_per_hour=9)
    rule = policies.rule_for(db.session, world.regions["g2"], None)
    assert (rule.points_per_hour, rule.version) == (9, newer.id)
    assert policies.rule_for(db.session, world.regions["g2"], None, {"points_per_hour": 20}).points_per_hour == 20
    assert policies.rule_for(db.session, None, None).points_per_hour == 10  # the built-in default


# Expiry counts each redemption net of its voids -----------------------------------------------

CUTOFF = datetime(2024, 12, 31, 16, 0, tzinfo=UTC)  # 2025-01-01 00:00 in Shanghai: the cut-off
SETTLEMENT = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 2026-03-01 12:00 in Shanghai


@pytest.fixture
def annual(world):
    """The county settles on 1 March; the resident has 120 points from 2024 and 20 from 2025."""
    from exchange import stores

    policies.set_policy(
        actor=None, region=world.regions["county"], now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1
    )
    user = world.users["resident"]
    credit_at(user, 120, datetime(2024, 6, 1, tzinfo=UTC), "old")
    credit_at(user, 20, datetime(2025, 6, 1, tzinfo=UTC), "recent")
    world.items["cooker"] = stores.add_item(
        actor=None, store_id=world.stores["s1"].id, name="电饭煲", unit="个", points_price=80, stock=10, now=utcnow()
    )
    return world


def redeem_80(w, when: datetime, key: str):
    from exchange import redemption

    return redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["cooker"].id, 1)],
        resident_id=w.users["resident"].id,
        key=key,
        now=when,
    )


def void(w, redeemed, when: datetime):
    from exchange import redemption

    # The region's admin may void any day (a clerk only the same day).
    redemption.void(actor=w.users["admin"], redemption_id=redeemed.id, reason="顾客退回", now=when)


@pytest.mark.parametrize(
    "redeemed_at, voided_at, lapses",
    [
        (CUTOFF - timedelta(days=30), CUTOFF - timedelta(days=29), 120),  # both before the cut-off
        (CUTOFF + timedelta(days=150), CUTOFF + timedelta(days=150, hours=1), 120),  # both after it, same day
        (CUTOFF - timedelta(hours=2), CUTOFF + timedelta(days=2), 120),  # redeemed before, voided after
        (CUTOFF + timedelta(days=150), None, 40),  # a redemption that stands spends old points
    ],
    ids=["void_before_cutoff", "void_after_cutoff", "redeemed_before_voided_after", "not_voided"],
)
def test_expiry_counts_each_redemption_net_of_its_voids_whenever_they_happened(annual, redeemed_at, voided_at, lapses):
    w, user = annual, annual.users["resident"]
    redeemed = redeem_80(w, redeemed_at, "r1")
    if voided_at is not None:
        void(w, redeemed, voided_at)
    balance = 140 if voided_at else 60
    assert ledger.balance(db.session, user.id) == balance
    assert expiry.next_lapse(user, date(2026, 2, 1)).points == lapses
    assert expiry.apply(now=SETTLEMENT) == lapses
    assert ledger.balance(db.session, user.id) == balance - lapses == 20
    assert expiry.apply(now=SETTLEMENT + timedelta(hours=1)) == 0  # idempotent
    assert ledger.balance(db.session, user.id) == 20
    assert ledger.invariant_problems(db.session) == []


def test_a_void_after_the_settlement_does_not_make_the_job_lapse_twice_or_fail(annual):
    w, user = annual, annual.users["resident"]
    redeemed = redeem_80(w, datetime(2026, 2, 15, 4, tzinfo=UTC), "r1")
    assert expiry.apply(now=SETTLEMENT) == 40  # 120 old, 80 of them spent
    void(w, redeemed, SETTLEMENT + timedelta(hours=1))
    assert ledger.balance(db.session, user.id) == 20 + 80
    assert expiry.apply(now=SETTLEMENT + timedelta(hours=2)) == 0  # this year's settlement is done
    assert ledger.balance(db.session, user.id) == 100
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == "expiry")) == 1
    assert ledger.invariant_problems(db.session) == []


def test_a_recent_credit_taken_back_by_a_correction_does_not_shield_old_points(world):
    policies.set_policy(
        actor=None, region=world.regions["county"], now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1
    )
    user = world.users["resident"]
    credit_at(user, 100, datetime(2024, 6, 1, tzinfo=UTC), "old")
    with unit_of_work() as session:
        move = ledger.transfer(
            session,
            source=ledger.issuer_account(session, "department", world.departments["d1"].id),
            target=ledger.resident_account(session, user.id),
            amount=50,
            kind="service",
            key="attendance:1:1",
            now=datetime(2025, 6, 1, tzinfo=UTC),
        )
        ledger.reverse(
            session,
            move.transfer,
            key="attendance:1:1:reversed",
            now=datetime(2025, 7, 1, tzinfo=UTC),
            actor_id=None,
            reason="误签",
        )
    assert expiry.apply(now=SETTLEMENT) == 100
    assert ledger.balance(db.session, user.id) == 0


def test_expiry_never_takes_a_resident_below_zero(world):
    policies.set_policy(
        actor=None, region=world.regions["county"], now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1
    )
    spender, saver = world.users["resident"], world.users["target"]
    credit_at(spender, 50, datetime(2024, 6, 1, tzinfo=UTC), "old-spender")
    spend_at(spender, 50, datetime(2025, 6, 1, tzinfo=UTC), "spent-all")
    credit_at(saver, 30, datetime(2024, 6, 1, tzinfo=UTC), "old-saver")
    assert expiry.apply(now=SETTLEMENT) == 30
    assert expiry.apply(now=SETTLEMENT) == 0
    assert (ledger.balance(db.session, spender.id), ledger.balance(db.session, saver.id)) == (0, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == "expiry")) == 1
    assert ledger.invariant_problems(db.session) == []


def test_the_cutoff_and_the_settlement_day_are_local_days(world):
    policies.set_policy(
        actor=None, region=world.regions["county"], now=utcnow(), expiry="annual", settlement_month=3, settlement_day=1
    )
    user = world.users["resident"]
    credit_at(user, 30, CUTOFF - timedelta(minutes=1), "old")  # 2024-12-31 23:59 in Shanghai
    credit_at(user, 20, CUTOFF + timedelta(minutes=1), "new")  # 2025-01-01 00:01 in Shanghai
    # 2026-02-28 17:00 UTC is already 1 March in Shanghai: the settlement day.
    assert expiry.apply(now=datetime(2026, 2, 28, 17, 0, tzinfo=UTC)) == 30
    assert ledger.balance(db.session, user.id) == 20
