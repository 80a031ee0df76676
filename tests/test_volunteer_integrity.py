"""Points mean time served: corrections never mint, make-ups need a second person, one person is in
one place, auto-closed check-outs and cancellations credit nothing nobody vouched for (issues 9, 14)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db import db, utcnow
from core.errors import DomainError
from exchange import redemption
from points import archive, ledger
from points.models import Account
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import activities, attendance, signups, tokens
from volunteer.models import Attendance, Signup


@pytest.fixture
def w(app):
    return build_world()


def scan(activity, who, at):
    token = tokens.rotating(db.session.get(type(activity), activity.id), at)[0]
    return attendance.scan_venue_code(user=who, token=token, now=at)


def served(w, who="resident", *, hours=3, stay=None, start_in=timedelta(hours=-4), **extra):
    """An activity of `hours`; `who` signs up and scans in at the start and out `stay` later."""
    activity = make_activity(w, start_in=start_in, hours=hours, **extra)
    signups.sign_up(user=w.users[who], activity_id=activity.id, now=activity.starts_at - timedelta(hours=1))
    scan(activity, w.users[who], activity.starts_at)
    row, action = scan(activity, w.users[who], activity.starts_at + (stay or timedelta(hours=hours)))
    assert action == "check_out"
    return activity, row


def organizer_corrects(w, activity_id, user_id, checked_in_at, checked_out_at, reason):
    return attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity_id,
        user_id=user_id,
        checked_in_at=checked_in_at,
        checked_out_at=checked_out_at,
        reason=reason,
        now=utcnow(),
    )


def spend_30(w, resident):
    """The clerk sells the resident three bottles of oil: 30 points."""
    return redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["oil"].id, 3)],
        key="spend-all",
        now=utcnow(),
        resident_id=resident.id,
    )


def sound(user) -> None:
    assert ledger.invariant_problems(db.session) == []
    assert archive.verify(db.session, user.id).ok


def test_correcting_spent_points_again_and_again_never_mints_new_ones(w):
    resident = w.users["resident"]
    activity, row = served(w)
    assert row.points == 30
    spend_30(w, resident)
    assert ledger.balance(db.session, resident.id) == 0
    for n in range(3):
        organizer_corrects(
            w,
            activity.id,
            resident.id,
            activity.starts_at,
            activity.starts_at + timedelta(hours=3),
            f"核对第 {n + 1} 次",
        )
        fresh()
        assert ledger.balance(db.session, resident.id) == 0
    account = db.session.scalar(sa.select(Account).where(Account.owner_id == resident.id, Account.kind == "resident"))
    assert account.debt == 0
    sound(resident)


def test_a_lowering_correction_of_spent_points_leaves_a_debt_that_later_credits_pay_first(w):
    resident = w.users["resident"]
    activity, _ = served(w)
    spend_30(w, resident)
    attendance.annul(
        actor=w.users["organizer"], activity_id=activity.id, user_id=resident.id, reason="其实没来", now=utcnow()
    )
    fresh()
    account = db.session.scalar(sa.select(Account).where(Account.owner_id == resident.id, Account.kind == "resident"))
    assert (account.balance, account.debt) == (0, 30)
    assert "欠 30 分" in archive.entries(db.session, resident.id)[-1].summary
    _, later = served(w, start_in=timedelta(hours=-8), hours=2)  # earns 20
    fresh()
    account = db.session.get(Account, account.id, populate_existing=True)
    assert (later.points, account.balance, account.debt) == (20, 0, 10)
    assert archive.entries(db.session, resident.id)[-1].summary == "抵扣更正欠分 20 分"
    sound(resident)


def test_an_organizer_never_back_fills_or_scans_their_own_attendance(client, w):
    organizer = w.users["organizer"]
    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=organizer, activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    answer = client.put(
        f"/api/v1/activities/{activity.id}/attendances/{organizer.id}",
        headers=f.bearer(organizer),
        json={
            "checked_in_at": activity.starts_at.isoformat(),
            "checked_out_at": activity.ends_at.isoformat(),
            "reason": "我自己也参加了",
        },
    )
    assert answer.status_code == 403 and answer.get_json()["code"] == "self_dealing"
    running = make_activity(w)
    from community import accounts

    mine = accounts.personal_code(organizer, utcnow())[0]
    kiosk = client.post(f"/api/v1/activities/{running.id}/scans", json={"code": mine}, headers=f.bearer(organizer))
    assert kiosk.status_code == 403 and kiosk.get_json()["code"] == "self_dealing"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0


def test_a_check_out_in_the_future_is_refused(client, w):
    activity = make_activity(w, start_in=timedelta(hours=-1), hours=3)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow() - timedelta(hours=2))
    answer = client.put(
        f"/api/v1/activities/{activity.id}/attendances/{w.users['resident'].id}",
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": activity.starts_at.isoformat(),
            "checked_out_at": (utcnow() + timedelta(hours=2)).isoformat(),
            "reason": "提前登记",
        },
    )
    assert answer.status_code == 422 and answer.get_json()["code"] == "times_in_future"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0


def test_a_make_up_posts_nothing_until_a_second_person_approves(client, w):
    resident, organizer, reviewer = w.users["resident"], w.users["organizer"], w.users["reviewer"]
    activity, row = served(w, hours=3, stay=timedelta(hours=1), start_in=timedelta(hours=-4))
    assert row.points == 10
    url = f"/api/v1/activities/{activity.id}/attendances/{resident.id}"
    raised = client.put(
        url,
        headers=f.bearer(organizer),
        json={
            "checked_in_at": activity.starts_at.isoformat(),
            "checked_out_at": activity.ends_at.isoformat(),
            "reason": "签退扫码失败，实际服务到结束",
        },
    )
    body = raised.get_json()
    assert raised.status_code == 200 and (body["review"], body["points"]) == ("pending", 10)
    assert ledger.balance(db.session, resident.id) == 10
    # The recorder cannot approve it, even holding the reviewer role; nor can the resident.
    f.grant(organizer, "reviewer", "region", "430101")
    f.grant(resident, "reviewer", "region", "430101")
    own = client.post(f"{url}/approve", json={}, headers=f.bearer(organizer))
    assert own.status_code == 403 and own.get_json()["code"] == "same_person"
    mine = client.post(f"{url}/approve", json={}, headers=f.bearer(resident))
    assert mine.status_code == 403 and mine.get_json()["code"] == "self_dealing"
    organizer_only = client.post(f"{url}/approve", json={}, headers=f.bearer(w.users["clerk"]))
    assert organizer_only.status_code == 403
    assert ledger.balance(db.session, resident.id) == 10
    ok = client.post(f"{url}/approve", json={"note": "有照片为证"}, headers=f.bearer(reviewer))
    body = ok.get_json()
    assert ok.status_code == 200
    assert (body["review"], body["credited_minutes"], body["makeup_minutes"], body["points"]) == (
        "approved",
        180,
        120,
        30,
    )
    shown = [(e.kind, e.points, e.manual) for e in archive.entries(db.session, resident.id)]
    assert shown[-2:] == [("service", 10, False), ("service", 20, True)]  # scanned and made up apart
    again = client.post(f"{url}/approve", json={}, headers=f.bearer(reviewer))
    assert again.status_code == 409 and again.get_json()["code"] == "not_pending_review"
    sound(resident)


def test_a_correction_back_to_what_the_scans_said_applies_at_once_without_review(client, w):
    resident = w.users["resident"]
    activity, _ = served(w, hours=3, start_in=timedelta(hours=-4))
    # The scans said 3 hours; the organizer first lowers it to 30 minutes, then restores it.
    organizer_corrects(
        w, activity.id, resident.id, activity.starts_at, activity.starts_at + timedelta(minutes=30), "签退记录有误"
    )
    assert ledger.balance(db.session, resident.id) == 5
    organizer_corrects(
        w, activity.id, resident.id, activity.starts_at, activity.starts_at + timedelta(hours=3), "恢复原签退时间"
    )
    fresh()
    assert db.session.scalar(sa.select(Attendance.review)) is None  # back to what the scans say: no review
    assert ledger.balance(db.session, resident.id) == 30
    sound(resident)


def test_a_rejected_make_up_changes_nothing_and_needs_a_reason(client, w):
    resident = w.users["resident"]
    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=resident, activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    url = f"/api/v1/activities/{activity.id}/attendances/{resident.id}"
    client.put(
        url,
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": activity.starts_at.isoformat(),
            "checked_out_at": activity.ends_at.isoformat(),
            "reason": "忘记扫码",
        },
    )
    bare = client.post(f"{url}/reject", json={"reason": ""}, headers=f.bearer(w.users["reviewer"]))
    assert bare.status_code == 422
    no = client.post(f"{url}/reject", json={"reason": "无人证明"}, headers=f.bearer(w.users["reviewer"]))
    assert no.status_code == 200 and (no.get_json()["review"], no.get_json()["points"]) == ("rejected", 0)
    assert ledger.balance(db.session, resident.id) == 0


def test_one_person_cannot_be_checked_in_at_two_places(client, w):
    resident = w.users["resident"]
    first = make_activity(w, start_in=timedelta(hours=-3), hours=4, allow_walk_in=True)
    second = make_activity(w, start_in=timedelta(hours=-3), hours=4, allow_walk_in=True)
    scan(first, resident, first.starts_at + timedelta(minutes=10))
    with pytest.raises(DomainError) as refused:
        scan(second, resident, first.starts_at + timedelta(hours=2))
    assert refused.value.code == "open_elsewhere"
    token = tokens.rotating(second, utcnow())[0]
    answer = client.post("/api/v1/checkins", json={"token": token}, headers=f.bearer(resident))
    assert answer.status_code == 409 and answer.get_json()["code"] == "open_elsewhere"
    row, _ = scan(first, resident, first.starts_at + timedelta(hours=2, minutes=10))
    assert row.points == 20
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 1


def test_minutes_already_credited_elsewhere_are_never_credited_twice(w):
    resident = w.users["resident"]
    _, row = served(w, hours=2, start_in=timedelta(hours=-3))
    assert row.points == 20
    second = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    signups.sign_up(user=resident, activity_id=second.id, now=utcnow() - timedelta(hours=4))
    organizer_corrects(w, second.id, resident.id, second.starts_at, second.ends_at, "补录")
    fresh()
    pending = db.session.scalar(sa.select(Attendance).where(Attendance.activity_id == second.id))
    # Same two hours as the first activity: nothing to credit, so nothing even needs review.
    assert (pending.review, pending.credited_minutes) == (None, 0)
    assert ledger.balance(db.session, resident.id) == 20
    sound(resident)


def test_a_waitlisted_walk_in_who_checks_in_is_confirmed_for_good(w):
    resident, other = w.users["resident"], w.users["target"]
    activity = make_activity(w, start_in=timedelta(minutes=-30), hours=2, capacity=1, allow_walk_in=True)
    signups.sign_up(user=other, activity_id=activity.id, now=utcnow() - timedelta(hours=1))
    assert signups.sign_up(user=resident, activity_id=activity.id, now=utcnow() - timedelta(hours=1)).status == (
        "waitlisted"
    )
    scan(activity, resident, utcnow())
    fresh()
    status = db.session.scalar(
        sa.select(Signup.status).where(Signup.activity_id == activity.id, Signup.user_id == resident.id)
    )
    assert status == "confirmed"


def test_an_activity_with_attendance_cannot_be_cancelled_until_each_is_annulled(client, w):
    resident = w.users["resident"]
    activity = make_activity(w, start_in=timedelta(hours=-3), hours=4)
    signups.sign_up(user=resident, activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    scan(activity, resident, activity.starts_at)
    scan(activity, resident, activity.starts_at + timedelta(hours=2))
    url = f"/api/v1/activities/{activity.id}/cancel"
    refused = client.post(url, headers=f.bearer(w.users["organizer"]))
    assert refused.status_code == 409 and refused.get_json()["code"] == "activity_has_attendance"
    assert ledger.balance(db.session, resident.id) == 20
    attendance.annul(
        actor=w.users["organizer"], activity_id=activity.id, user_id=resident.id, reason="活动取消", now=utcnow()
    )
    assert client.post(url, headers=f.bearer(w.users["organizer"])).status_code == 200
    assert ledger.balance(db.session, resident.id) == 0
    assert activities.get(activity.id).status == "cancelled"
    sound(resident)


def test_a_refund_pays_a_corrections_debt_first(w):
    """Spend the points, lose them to a correction, then void the basket: the refund settles the
    debt instead of handing back points that no service earned."""
    from community import accounts

    resident = w.users["resident"]
    activity, _ = served(w)
    basket = spend_30(w, resident)
    attendance.annul(
        actor=w.users["organizer"], activity_id=activity.id, user_id=resident.id, reason="其实没来", now=utcnow()
    )
    redemption.void(
        actor=w.users["clerk"],
        redemption_id=basket.id,
        reason="顾客退货",
        now=utcnow(),
        code=accounts.personal_code(resident, utcnow())[0],
    )
    fresh()
    account = db.session.scalar(sa.select(Account).where(Account.owner_id == resident.id, Account.kind == "resident"))
    assert (account.balance, account.debt) == (0, 0)
    sound(resident)


def test_a_walk_in_scanning_eight_times_at_once_gets_one_sign_up_and_one_attendance(app, w):
    from tests.test_core_concurrency import run_threads

    activity = make_activity(w, start_in=timedelta(minutes=-30), hours=2, allow_walk_in=True)
    token = tokens.rotating(activity, utcnow())[0]
    bearer = f.bearer(w.users["stranger"])

    def scan_now(i):
        return app.test_client().post("/api/v1/checkins", json={"token": token}, headers=bearer)

    answers = run_threads(app, 8, scan_now)
    assert [getattr(a, "status_code", a) for a in answers] == [200] * 8
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Signup)) == 1
