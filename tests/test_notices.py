"""Notices that arrive: sign-up confirmed, promoted from the waitlist, points credited, make-up
approved or rejected, redemption and void each reach the resident's inbox with the change itself,
once, and are delivered by the scheduled job that `make run` starts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db import db, utcnow
from core.jobs import jobs_of, run_job
from core.notify import Notification
from exchange import redemption
from tests import factories as f
from tests.authz import build_world, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups, tokens


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    return world


def notes(user, kind: str | None = None) -> list[Notification]:
    fresh()
    select = sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    if kind:
        select = select.where(Notification.kind == kind)
    return list(db.session.scalars(select))


def checked_out(w, who: str = "resident", minutes: int = 90):
    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    signups.sign_up(user=w.users[who], activity_id=activity.id, now=utcnow())
    came = utcnow() - timedelta(minutes=minutes)
    attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, came)[0], now=came)
    row, _ = attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, utcnow())[0], now=utcnow())
    return activity, row


def test_a_confirmed_sign_up_and_a_promotion_from_the_waitlist_are_announced(w):
    activity = make_activity(w, start_in=timedelta(days=1), capacity=1)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    signups.sign_up(user=w.users["target"], activity_id=activity.id, now=utcnow())
    [confirmed] = notes(w.users["resident"], "signup")
    assert confirmed.title == "报名成功：河道垃圾清理" and "花果山村河边" in confirmed.body
    assert notes(w.users["target"]) == []  # waitlisted: the page said so
    signups.cancel(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    [promoted] = notes(w.users["target"], "waitlist")
    assert "候补" in promoted.title and "河道垃圾清理" in promoted.body


def test_points_credited_at_check_out_are_announced_once(w):
    activity, _row = checked_out(w)
    [note] = notes(w.users["resident"], "points")
    assert note.title == "积分到账 +15" and "1.5 小时" in note.body and note.sent_at is None
    # A repeat scan within the debounce changes nothing and tells nothing more.
    attendance.scan_venue_code(
        user=w.users["resident"], token=tokens.rotating(activity, utcnow())[0], now=utcnow() + timedelta(seconds=5)
    )
    assert len(notes(w.users["resident"], "points")) == 1


def test_too_short_a_stay_earns_no_points_and_no_notice(w):
    checked_out(w, minutes=10)
    assert notes(w.users["resident"], "points") == []


def test_a_make_up_approved_or_rejected_is_announced(w):
    activity = make_activity(w, start_in=timedelta(hours=-3), hours=4)
    for who in ("resident", "target"):
        signups.sign_up(user=w.users[who], activity_id=activity.id, now=utcnow())
        attendance.correct(
            actor=w.users["organizer"],
            activity_id=activity.id,
            user_id=w.users[who].id,
            checked_in_at=activity.starts_at,
            checked_out_at=activity.starts_at + timedelta(hours=2),
            reason="忘记扫码，组织者核实",
            now=utcnow(),
        )
    assert notes(w.users["resident"], "makeup") == []  # pending: nothing decided yet
    attendance.approve(actor=w.users["reviewer"], activity_id=activity.id, user_id=w.users["resident"].id, now=utcnow())
    attendance.reject(
        actor=w.users["reviewer"],
        activity_id=activity.id,
        user_id=w.users["target"].id,
        reason="无人作证",
        now=utcnow(),
    )
    [approved] = notes(w.users["resident"], "makeup")
    assert approved.title.startswith("补录已通过") and "2 小时、20 积分" in approved.body
    [rejected] = notes(w.users["target"], "makeup")
    assert rejected.title.startswith("补录未通过") and "无人作证" in rejected.body


def test_a_redemption_and_its_void_are_announced_and_a_retry_tells_nothing_twice(client, w):
    clerk = f.bearer(w.users["clerk"])
    body = {"resident_id": w.users["resident"].id, "lines": [{"item_id": w.items["oil"].id, "qty": 2}]}
    url = f"/api/v1/stores/{w.stores['s1'].id}/redemptions"
    made = client.post(url, json=body, headers={**clerk, "Idempotency-Key": "k1"}).get_json()
    assert client.post(url, json=body, headers={**clerk, "Idempotency-Key": "k1"}).get_json() == made
    [spent] = notes(w.users["resident"], "redemption")
    assert spent.title == "兑换成功 -20" and "食用油×2" in spent.body and "余额 80 分" in spent.body
    redemption.void(actor=w.users["admin"], redemption_id=made["id"], reason="拿错了", now=utcnow())
    voided = notes(w.users["resident"], "redemption")[1]
    assert voided.title == "兑换已撤销 +20" and "拿错了" in voided.body


def test_the_inbox_shows_a_notice_before_it_is_delivered_and_the_job_delivers_it(app, client, w):
    checked_out(w)
    sign_in_page(client, w.users["resident"])
    assert "积分到账 +15" in client.get("/my/inbox").get_data(as_text=True)
    # `make run` serves with `flask run` (MORALCREDIT_SCHEDULER defaults to on): the scheduler runs
    # this job every minute, with no step of the operator's.
    job = jobs_of(app)["deliver-notifications"]
    assert job.trigger == {"minute": "*"}
    run_job("deliver-notifications")
    assert all(n.sent_at is not None for n in notes(w.users["resident"]))
