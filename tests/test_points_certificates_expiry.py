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
