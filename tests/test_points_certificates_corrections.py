"""Certificates tell the truth after corrections: hours as finally settled on the service day, each
attendance once, scanned and made-up apart; a certificate whose records changed says so."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from community import accounts
from core import clock
from core.db import unit_of_work, utcnow
from points import awards, certificates
from points.models import Certificate
from points.rules import Rule, credit
from tests import factories as f
from tests.authz import build_world, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups


@pytest.fixture
def w(app):
    return build_world()


def scanned_attendance(w, *, minutes: int, days_ago: int = 2):
    """The resident scanned in at the start of a two-hour activity `days_ago` days ago and out
    `minutes` later, at the organizer's kiosk; returns the activity."""
    activity = make_activity(w, start_in=timedelta(days=-days_ago), hours=2)
    volunteer, organizer = w.users["resident"], w.users["organizer"]
    signups.sign_up(user=volunteer, activity_id=activity.id, now=activity.starts_at - timedelta(days=1))
    for moment in (activity.starts_at, activity.starts_at + timedelta(minutes=minutes)):
        code = accounts.personal_code(volunteer, moment)[0]
        row, _ = attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=code, now=moment)
    assert row.credited_minutes == minutes
    return activity


def issue(client, w, day: date, to: date | None = None) -> dict:
    response = client.post(
        "/api/v1/me/certificates",
        headers=f.bearer(w.users["resident"]),
        json={"from": day.isoformat(), "to": (to or day).isoformat()},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def check(client, code: str) -> dict:
    response = client.get(f"/api/v1/certificates/{code}")
    assert response.status_code == 200
    return response.get_json()


def test_a_certificate_counts_corrected_hours_once_and_annulled_hours_not_at_all_on_the_service_day(client, w):
    activity = scanned_attendance(w, minutes=90)
    day = clock.today(activity.starts_at)
    before = issue(client, w, day)
    assert before["service_hours"] == 1.5
    assert check(client, before["code"])["corrected"] is False

    # Corrected two days later, 90 → 30 minutes: the reversal is dated today, the service day stays.
    start = activity.starts_at
    attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity.id,
        user_id=w.users["resident"].id,
        checked_in_at=start,
        checked_out_at=start + timedelta(minutes=30),
        reason="签退时间填错",
        now=utcnow(),
    )
    corrected = issue(client, w, day)
    assert corrected["service_hours"] == 0.5
    assert issue(client, w, day, clock.today())["service_hours"] == 0.5  # each attendance counted once
    first = check(client, before["code"])
    assert (first["valid"], first["corrected"], first["service_hours"]) == (True, True, 1.5)
    assert first["current"]["service_hours"] == 0.5 and first["current"]["records"] == 1

    attendance.annul(
        actor=w.users["organizer"], activity_id=activity.id, user_id=w.users["resident"].id, reason="误签", now=utcnow()
    )
    annulled = issue(client, w, day)
    assert annulled["service_hours"] == 0.0
    for code, certified in ((before["code"], 1.5), (corrected["code"], 0.5)):
        view = check(client, code)
        assert (view["corrected"], view["service_hours"]) == (True, certified)
        assert (view["current"]["service_hours"], view["current"]["records"]) == (0.0, 0)
    assert check(client, annulled["code"])["corrected"] is False


def test_the_public_page_says_corrected_with_the_current_hours_beside_the_certified_ones(client, w):
    activity = scanned_attendance(w, minutes=90)
    day = clock.today(activity.starts_at)
    before = issue(client, w, day)
    untouched = client.get(f"/certificates/{before['code']}").get_data(as_text=True)
    assert "证明有效" in untouched and "已更正" not in untouched

    attendance.annul(
        actor=w.users["organizer"], activity_id=activity.id, user_id=w.users["resident"].id, reason="误签", now=utcnow()
    )
    page = client.get(f"/certificates/{before['code']}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "已更正" in text and "证明有效" not in text
    assert "1.5 小时" in text and "0.0 小时" in text and "张小明" not in text
    sign_in_page(client, w.users["resident"])
    printed = client.get(f"/my/certificates/{before['code']}").get_data(as_text=True)
    assert "已更正" in printed and "1.5" in printed


def service(w, start: datetime, minutes: int, key: str, *, manual: bool = False):
    rule = Rule(minimum_minutes=0, unit_minutes=1)
    return awards.credit_service(
        user_id=w.users["resident"].id,
        department_id=w.departments["d1"].id,
        credit=credit(start, start + timedelta(minutes=minutes), start, start + timedelta(hours=8), rule),
        key=key,
        manual=manual,
        now=utcnow(),
        activity={"title": "河道清理", "organizer": "城关派出所"},
    )


def test_scanned_and_made_up_minutes_are_certified_apart_and_each_attendance_once(client, w):
    start = utcnow().replace(microsecond=0) - timedelta(days=3)
    service(w, start, 60, "attendance:7:1")
    # A settlement of attendance 7 left standing beside its newer version: only the newer counts.
    service(w, start, 90, "attendance:7:2")
    service(w, start, 30, "attendance:7:2:makeup", manual=True)
    service(w, start + timedelta(hours=3), 45, "attendance:8:1")
    day = clock.today(start)
    cert = certificates.issue(user=w.users["resident"], period_from=day, period_to=day, now=utcnow())
    assert (cert.service_minutes, cert.manual_minutes, cert.records) == (165, 30, 2)
    view = check(client, cert.code)
    assert (view["service_hours"], view["scanned_hours"], view["manual_hours"], view["records"]) == (2.75, 2.25, 0.5, 2)
    assert view["corrected"] is False

    # The make-up is taken back: the certificate that covered it is corrected, scanned hours stay.
    awards.reverse_service(
        key="attendance:7:2:makeup",
        new_key="attendance:7:2:makeup:reversed",
        reason="补录有误",
        now=utcnow(),
        actor_id=None,
    )
    view = check(client, cert.code)
    assert view["corrected"] is True
    assert (view["current"]["scanned_hours"], view["current"]["manual_hours"]) == (2.25, 0.0)


def test_the_period_is_made_of_local_days(client, w):
    # 2026-11-20 00:30 in Shanghai is still 2026-11-19 in UTC: it is service of the 20th.
    service(w, datetime(2026, 11, 19, 16, 30, tzinfo=UTC), 60, "attendance:9:1")
    assert issue(client, w, date(2026, 11, 20))["service_hours"] == 1.0
    assert issue(client, w, date(2026, 11, 19))["service_hours"] == 0.0


@pytest.mark.parametrize(
    "period",
    [
        {"from": "2026-05-02", "to": "2026-05-01"},
        {"from": "0001-01-01", "to": "2026-05-01"},
        {"from": "2026-05-01", "to": "9999-12-31"},
        {"from": "2026-05-01", "to": "tomorrow"},
    ],
    ids=["reversed", "year_one", "far_future", "not_a_date"],
)
def test_a_period_that_is_backwards_too_early_or_not_yet_over_is_refused(client, w, period):
    response = client.post("/api/v1/me/certificates", headers=f.bearer(w.users["resident"]), json=period)
    assert response.status_code == 422
    assert response.get_json()["code"] in ("period_invalid", "validation_failed")


def test_a_period_ending_after_today_is_refused_because_its_records_are_not_settled(client, w):
    tomorrow = clock.today() + timedelta(days=1)
    response = client.post(
        "/api/v1/me/certificates",
        headers=f.bearer(w.users["resident"]),
        json={"from": clock.today().isoformat(), "to": tomorrow.isoformat()},
    )
    assert response.status_code == 422 and response.get_json()["code"] == "period_invalid"


def test_the_certificate_form_refuses_a_bad_period_and_keeps_what_was_typed(client, w):
    from tests.authz import csrf_token

    sign_in_page(client, w.users["resident"])
    token = csrf_token(client)
    response = client.post("/my/certificates", data={"csrf_token": token, "from": "0001-01-01", "to": "2026-01-31"})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert 'value="0001-01-01"' in text and 'value="2026-01-31"' in text


def test_a_certificate_issued_before_certificates_kept_their_entries_is_checked_by_its_figures(client, w):
    start = utcnow().replace(microsecond=0) - timedelta(days=3)
    service(w, start, 60, "attendance:5:1")
    day = clock.today(start)
    cert = certificates.issue(user=w.users["resident"], period_from=day, period_to=day, now=utcnow())
    with unit_of_work() as session:
        legacy = session.get(Certificate, cert.id)
        legacy.entry_seqs, legacy.fingerprint = None, None
    assert check(client, cert.code)["corrected"] is False
    awards.reverse_service(
        key="attendance:5:1", new_key="attendance:5:1:reversed", reason="误签", now=utcnow(), actor_id=None
    )
    view = check(client, cert.code)
    assert (view["corrected"], view["service_hours"], view["current"]["service_hours"]) == (True, 1.0, 0.0)
    fresh()
