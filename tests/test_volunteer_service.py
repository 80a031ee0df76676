"""Volunteer service end to end through its services and API: sign-ups, QR check-in and out,
time into points, corrections, missed check-outs, reminders."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import zxingcpp
from PIL import Image

from community import accounts
from community.models import User
from core.audit import AuditEntry
from core.db import db, utcnow
from core.jobs import run_job
from core.notify import Notification
from points import archive, ledger
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.test_core_concurrency import run_threads
from tests.volunteer_helpers import make_activity
from volunteer import activities, attendance, signups, tokens
from volunteer.models import Activity, Attendance, Signup


@pytest.fixture
def w(app):
    return build_world()


def decode(png: bytes) -> str:
    [result] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return result.text


def create(client, w, **values):
    """POST /activities as the organizer of d1, with a valid body that `values` override."""
    start = utcnow().replace(microsecond=0) + timedelta(days=1)
    body = {
        "title": "夜间巡逻",
        "description": "",
        "category": "平安巡逻",
        "department_id": w.departments["d1"].id,
        "region_code": "43010101",
        "address": "村口",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }
    return client.post("/api/v1/activities", headers=f.bearer(w.users["organizer"]), json={**body, **values})


def test_an_activity_is_created_published_and_listed(client, w):
    created = create(client, w, capacity=2)
    assert created.status_code == 201 and created.get_json()["status"] == "draft"
    activity_id = created.get_json()["id"]
    assert client.get(f"/api/v1/activities/{activity_id}").status_code == 404  # drafts are the organizer's
    published = client.post(f"/api/v1/activities/{activity_id}/publish", headers=f.bearer(w.users["organizer"]))
    assert published.status_code == 200 and published.get_json()["status"] == "published"
    listed = client.get("/api/v1/activities", query_string={"region_code": "430101", "category": "平安巡逻"}).get_json()
    assert [a["id"] for a in listed["items"]] == [activity_id]
    assert client.get("/api/v1/activities", query_string={"region_code": "430102"}).get_json()["total"] == 0
    one = client.get(f"/api/v1/activities/{activity_id}").get_json()
    assert (one["capacity"], one["signed_up"], one["waitlisted"]) == (2, 0, 0)
    again = client.post(f"/api/v1/activities/{activity_id}/publish", headers=f.bearer(w.users["organizer"]))
    assert again.status_code == 409
    # An edit sends only what changes; what it leaves out stays, and the rules still hold.
    edit = f"/api/v1/activities/{activity_id}"
    changed = client.patch(edit, json={"capacity": 5}, headers=f.bearer(w.users["organizer"]))
    assert changed.status_code == 200
    assert (changed.get_json()["capacity"], changed.get_json()["title"]) == (5, "夜间巡逻")
    before_start = (utcnow() - timedelta(days=1)).isoformat()
    backwards = client.patch(edit, json={"ends_at": before_start}, headers=f.bearer(w.users["organizer"]))
    assert backwards.status_code == 422 and "ends_at" in backwards.get_json()["errors"]
    assert client.get(edit).get_json()["capacity"] == 5


def test_bad_activity_input_is_a_clear_422(client, w):
    response = create(client, w, title="", category="跳舞", starts_at="2026-05-01T09:00:00", ends_at="tomorrow")
    assert response.status_code == 422
    assert {"title", "category", "starts_at", "ends_at"} <= set(response.get_json()["errors"])
    start = utcnow() + timedelta(days=1)
    backwards = create(client, w, starts_at=start.isoformat(), ends_at=(start - timedelta(hours=1)).isoformat())
    assert backwards.status_code == 422 and "ends_at" in backwards.get_json()["errors"]


def test_concurrent_sign_ups_never_exceed_capacity_and_cancel_promotes(app, w):
    activity = make_activity(w, start_in=timedelta(days=1), capacity=5)
    people = [f.user("43010101", name=f"志愿者{i}").id for i in range(12)]
    activity_id = activity.id

    def sign_up(i: int) -> str:
        # Each thread loads its own objects: ORM instances belong to one session, one thread.
        return signups.sign_up(user=db.session.get(User, people[i]), activity_id=activity_id, now=utcnow()).status

    results = run_threads(app, 12, sign_up)
    assert sorted(results) == ["confirmed"] * 5 + ["waitlisted"] * 7
    fresh()
    first_waiting = db.session.scalar(
        sa.select(Signup)
        .where(Signup.activity_id == activity.id, Signup.status == "waitlisted")
        .order_by(Signup.created_at, Signup.id)
    )
    leaver = db.session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id, Signup.status == "confirmed"))
    signups.cancel(user=leaver.user, activity_id=activity.id, now=utcnow())
    fresh()
    assert db.session.get(Signup, first_waiting.id).status == "confirmed"
    assert activities.counts(activity.id) == {"signed_up": 5, "waitlisted": 6, "pending": 0}
    note = db.session.scalar(sa.select(Notification).where(Notification.kind == "waitlist"))
    assert note.user_id == first_waiting.user_id


def test_signing_up_twice_is_409(client, w):
    activity = make_activity(w, start_in=timedelta(days=1))
    url = f"/api/v1/activities/{activity.id}/signups"
    assert client.post(url, headers=f.bearer(w.users["resident"])).get_json()["status"] == "confirmed"
    again = client.post(url, headers=f.bearer(w.users["resident"]))
    assert again.status_code == 409 and again.get_json()["code"] == "already_signed_up"


def test_approval_flow(client, w):
    activity = make_activity(w, start_in=timedelta(days=1), requires_approval=True)
    mine = client.post(f"/api/v1/activities/{activity.id}/signups", headers=f.bearer(w.users["resident"])).get_json()
    assert mine["status"] == "pending"
    approved = client.post(
        f"/api/v1/activities/{activity.id}/signups/{mine['id']}/approve", headers=f.bearer(w.users["organizer"])
    )
    assert approved.get_json()["status"] == "confirmed"
    listed = client.get(f"/api/v1/activities/{activity.id}/signups", headers=f.bearer(w.users["organizer"])).get_json()
    assert [(s["name"], s["status"]) for s in listed["items"]] == [("张小明", "confirmed")]


def test_the_venue_qr_checks_in_and_out_and_credits_explained_points(client, w):
    activity = make_activity(w, hours=3)

    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    png = client.get(f"/api/v1/activities/{activity.id}/venue-code.png", headers=f.bearer(w.users["organizer"]))
    url = decode(png.data)
    assert urlparse(url).path == "/scan"
    token = parse_qs(urlparse(url).query)["t"][0]
    checked_in = client.post("/api/v1/checkins", json={"token": token}, headers=f.bearer(w.users["resident"]))
    assert checked_in.status_code == 200 and checked_in.get_json()["action"] == "check_in"
    body = checked_in.get_json()["attendance"]
    assert set(body) >= {
        "id",
        "activity_id",
        "user_id",
        "checked_in_at",
        "checked_out_at",
        "status",
        "credited_minutes",
        "points",
    }
    # Scanned again within a minute: nothing changes.
    twice = client.post("/api/v1/checkins", json={"token": token}, headers=f.bearer(w.users["resident"]))
    assert twice.get_json()["action"] == "check_in" and twice.get_json()["attendance"]["id"] == body["id"]
    # Ninety minutes later, a fresh code checks out; the time becomes points through the ledger.
    later = utcnow() + timedelta(minutes=90)
    row, action = attendance.scan_venue_code(
        user=w.users["resident"], token=tokens.rotating(activity, later)[0], now=later
    )
    assert action == "check_out" and row.credited_minutes == 90 and row.points == 15
    assert ledger.balance(db.session, w.users["resident"].id) == 15
    [entry] = archive.entries(db.session, w.users["resident"].id)
    assert "15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）" in entry.summary
    mine = client.get("/api/v1/me/attendances", headers=f.bearer(w.users["resident"])).get_json()["items"]
    assert (mine[0]["credited_minutes"], mine[0]["points"]) == (90, 15)
    with pytest.raises(Exception) as done:
        attendance.scan_venue_code(
            user=w.users["resident"],
            token=tokens.rotating(activity, later + timedelta(minutes=5))[0],
            now=later + timedelta(minutes=5),
        )
    assert done.value.code == "already_checked_out"


@pytest.mark.parametrize("case", ["old", "other", "tampered", "poster_outside", "garbage"])
def test_stale_foreign_tampered_or_out_of_window_tokens_are_refused(client, w, case):
    activity = make_activity(w, allow_walk_in=True)
    other = make_activity(w, allow_walk_in=True)
    now = utcnow()
    token = {
        "old": lambda: tokens.rotating(activity, now - timedelta(seconds=90))[0],
        "other": lambda: tokens.rotating(other, now)[0].replace(f"A{other.id}.", f"A{activity.id}."),
        "tampered": lambda: tokens.rotating(activity, now)[0][:-2] + "AA",
        "poster_outside": lambda: tokens.poster(make_activity(w, start_in=timedelta(days=2)))[0],
        "garbage": lambda: "hello",
    }[case]()
    response = client.post("/api/v1/checkins", json={"token": token}, headers=f.bearer(w.users["resident"]))
    assert response.status_code == 422
    assert (
        response.get_json()["code"]
        == {
            "old": "token_expired",
            "other": "token_invalid",
            "tampered": "token_invalid",
            "poster_outside": "token_out_of_window",
            "garbage": "token_invalid",
        }[case]
    )


def test_the_previous_step_is_still_accepted(w):
    activity = make_activity(w, allow_walk_in=True)
    now = utcnow()
    token, _ = tokens.rotating(activity, now - timedelta(seconds=tokens.STEP_SECONDS))
    row, action = attendance.scan_venue_code(user=w.users["resident"], token=token, now=now)
    assert action == "check_in" and row.method_in == "venue"


def test_the_kiosk_scans_personal_codes(client, w):
    activity = make_activity(w)
    signups.sign_up(user=w.users["target"], activity_id=activity.id, now=utcnow())
    code = accounts.personal_code(w.users["target"], utcnow())[0]
    response = client.post(
        f"/api/v1/activities/{activity.id}/scans", json={"code": code}, headers=f.bearer(w.users["organizer"])
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["action"] == "check_in" and body["volunteer"] == {"id": w.users["target"].id, "name": "李四"}
    not_signed = client.post(
        f"/api/v1/activities/{activity.id}/scans",
        json={"code": accounts.personal_code(w.users["stranger"], utcnow())[0]},
        headers=f.bearer(w.users["organizer"]),
    )
    assert not_signed.status_code == 422 and not_signed.get_json()["code"] == "not_signed_up"


def test_the_daily_cap_counts_the_shanghai_day_across_activities(w):
    """Two activities on one Asia/Shanghai day share the 8-hour cap; the next local day starts
    afresh, although in UTC all three fall on the same date (the local day begins at 16:00 UTC)."""
    from datetime import UTC, datetime

    organizer, volunteer = w.users["organizer"], w.users["target"]
    created = datetime(2026, 11, 1, tzinfo=UTC)

    def attend(start_utc, hours, came, left):
        activity = make_activity(w, start_in=start_utc - utcnow().replace(microsecond=0), hours=hours)
        signups.sign_up(user=volunteer, activity_id=activity.id, now=created)
        for moment in (came, left):
            code = accounts.personal_code(volunteer, moment)[0]
            row, _ = attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=code, now=moment)
        return row

    # 2026-11-20 00:30–06:30 in Shanghai is 2026-11-19 16:30–22:30 UTC: six hours served.
    night = datetime(2026, 11, 19, 16, 30, tzinfo=UTC)
    first = attend(night, 6, night, night + timedelta(hours=6))
    assert (first.credited_minutes, first.points) == (360, 60)
    # The same Shanghai afternoon: four hours served, two left under the cap.
    noon = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    second = attend(noon, 4, noon, noon + timedelta(hours=4))
    assert (second.credited_minutes, second.points) == (120, 20)
    # 2026-11-21 00:10 Shanghai (still 2026-11-20 in UTC): a new day, a new cap.
    next_day = datetime(2026, 11, 20, 16, 10, tzinfo=UTC)
    third = attend(next_day, 2, next_day, next_day + timedelta(hours=2))
    assert (third.credited_minutes, third.points) == (120, 20)
    assert ledger.balance(db.session, volunteer.id) == 100
    summaries = [e.summary for e in archive.entries(db.session, volunteer.id)]
    assert any("每日最多计 8 小时" in s for s in summaries)


def past_activity(w, *who):
    """An activity that ran from 3 to 1 hours ago, with `who` signed up before it."""
    activity = make_activity(w, start_in=timedelta(hours=-3), hours=2)
    for name in who:
        signups.sign_up(user=w.users[name], activity_id=activity.id, now=utcnow() - timedelta(hours=4))
    return activity


def backfill(w, activity, who, served: timedelta, *, approve: bool = True):
    """The organizer back-fills `who`'s attendance from the activity's start; a reviewer (the
    second person of the four-eyes rule) approves it unless `approve` is false."""
    start = activity.starts_at
    row = attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity.id,
        user_id=w.users[who].id,
        checked_in_at=start,
        checked_out_at=start + served,
        reason="补录",
        now=utcnow(),
    )
    assert row.review == "pending" and row.points == 0
    if not approve:
        return row
    return attendance.approve(actor=w.users["reviewer"], activity_id=activity.id, user_id=w.users[who].id, now=utcnow())


def test_a_raised_correction_waits_for_a_reviewer_then_recredits_as_manual_hours(client, w):
    activity = past_activity(w, "resident")
    start = activity.starts_at
    backfill(w, activity, "resident", timedelta(minutes=60))
    url = f"/api/v1/activities/{activity.id}/attendances/{w.users['resident'].id}"
    response = client.put(
        url,
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": start.isoformat(),
            "checked_out_at": (start + timedelta(hours=2, minutes=40)).isoformat(),
            "reason": "签退时间填错",
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["review"], body["credited_minutes"], body["points"]) == ("pending", 60, 10)
    assert ledger.balance(db.session, w.users["resident"].id) == 10
    approved = client.post(f"{url}/approve", json={}, headers=f.bearer(w.users["reviewer"]))
    assert approved.status_code == 200
    body = approved.get_json()
    assert (body["review"], body["credited_minutes"], body["points"]) == ("approved", 120, 20)  # the activity's length
    assert body["makeup_minutes"] == 120
    kinds = [(e.kind, e.points, e.manual) for e in archive.entries(db.session, w.users["resident"].id)]
    assert kinds == [("service", 10, True), ("reversal", -10, True), ("service", 20, True)]
    assert ledger.balance(db.session, w.users["resident"].id) == 20
    no_reason = client.put(
        url,
        headers=f.bearer(w.users["organizer"]),
        json={"checked_in_at": start.isoformat(), "checked_out_at": start.isoformat(), "reason": ""},
    )
    assert no_reason.status_code == 422
    assert ledger.invariant_problems(db.session) == []


FIX_FORM = "请填写完整、正确的内容"


@pytest.mark.parametrize(
    "form, text",
    [
        (
            {"action": "correct", "user_id": "me", "checked_in_at": "", "checked_out_at": "", "reason": "补录"},
            "请填写签到和签退时间",
        ),
        (
            {"action": "correct", "user_id": "me", "checked_in_at": "昨天", "checked_out_at": "", "reason": "补录"},
            FIX_FORM,
        ),
        ({"action": "annul", "reason": "签错了"}, FIX_FORM),
        ({"action": "annul", "user_id": "x", "reason": "签错了"}, FIX_FORM),
        ({"action": "annul", "user_id": "me", "reason": ""}, "请填写原因"),
        ({"action": "confirm", "user_id": "0"}, "找不到"),
        ({"action": "explode", "user_id": "me"}, FIX_FORM),
    ],
    ids=["empty_times", "bad_time", "no_user", "bad_user", "no_reason", "unknown_user", "unknown_action"],
)
def test_bad_management_forms_get_a_message_and_change_nothing(app, w, form, text):
    activity = past_activity(w, "resident")
    backfill(w, activity, "resident", timedelta(hours=1))
    page = app.test_client()
    sign_in_page(page, w.users["organizer"])
    mine = {"user_id": str(w.users["resident"].id)} if form.get("user_id") == "me" else {}
    answer = page.post(
        f"/organizer/activities/{activity.id}",
        data={"csrf_token": csrf_token(page), **form, **mine},
        follow_redirects=True,
    )
    shown = answer.get_data(as_text=True)
    assert answer.status_code == 200 and text in shown and "已保存" not in shown
    fresh()
    [row] = db.session.scalars(sa.select(Attendance)).all()
    assert (row.status, row.points) == ("closed", 10) and ledger.balance(db.session, w.users["resident"].id) == 10


@pytest.mark.parametrize("who", ["stranger", "target"], ids=["never_signed_up", "still_pending"])
def test_only_a_confirmed_volunteer_can_be_back_filled(client, w, who):
    """A back-fill credits points: an organizer may not hand them to any resident they like."""
    activity = past_activity(w, "resident")
    if who == "target":
        fresh()
        db.session.add(Signup(activity_id=activity.id, user_id=w.users["target"].id, status="pending"))
        db.session.commit()
    start = activity.starts_at
    response = client.put(
        f"/api/v1/activities/{activity.id}/attendances/{w.users[who].id}",
        headers=f.bearer(w.users["organizer"]),
        json={
            "checked_in_at": start.isoformat(),
            "checked_out_at": (start + timedelta(hours=2)).isoformat(),
            "reason": "说是来过",
        },
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "volunteer_not_signed_up" and "不能补录" in problem["errors"]["user_id"][0]
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 0
    assert ledger.balance(db.session, w.users[who].id) == 0


def test_missed_check_outs_post_nothing_until_the_organizer_confirms_and_a_reviewer_approves(app, w):
    activity = make_activity(w, start_in=timedelta(hours=-5), hours=2)
    fresh()
    row = Attendance(
        activity_id=activity.id,
        user_id=w.users["resident"].id,
        checked_in_at=activity.starts_at,
        scanned_in_at=activity.starts_at,
        status="open",
        method_in="venue",
        updated_at=activity.starts_at,
    )
    db.session.add(row)
    db.session.commit()
    assert run_job("close-missed-checkouts") == "closed 1"
    assert run_job("close-missed-checkouts") == "closed 0"
    fresh()
    row = db.session.get(Attendance, row.id)
    # Only the check-in was scanned: the job closes the row and credits nothing.
    assert (row.status, row.method_out, row.checked_out_at, row.points) == ("auto", "auto", activity.ends_at, 0)
    assert ledger.balance(db.session, w.users["resident"].id) == 0
    # The organizer confirms on the management page: that is a make-up, so it waits for review.
    page = app.test_client()
    sign_in_page(page, w.users["organizer"])
    assert "自动签退，未计积分" in page.get(f"/organizer/activities/{activity.id}").get_data(as_text=True)
    confirmed = page.post(
        f"/organizer/activities/{activity.id}",
        data={"csrf_token": csrf_token(page), "action": "confirm", "user_id": str(w.users["resident"].id)},
        follow_redirects=True,
    )
    assert "待审核员审核" in confirmed.get_data(as_text=True)
    fresh()
    row = db.session.get(Attendance, row.id)
    assert (row.status, row.review, row.points) == ("auto", "pending", 0)
    assert ledger.balance(db.session, w.users["resident"].id) == 0
    with pytest.raises(Exception) as twice:
        attendance.confirm(actor=w.users["organizer"], activity_id=activity.id, user_id=row.user_id, now=utcnow())
    assert twice.value.code == "makeup_pending"
    # The reviewer approves on the review page: now the time is credited, as a make-up.
    review = app.test_client()
    sign_in_page(review, w.users["reviewer"])
    assert w.users["resident"].name in review.get("/reviewer/makeups").get_data(as_text=True)
    done = review.post(
        "/reviewer/makeups",
        data={
            "csrf_token": csrf_token(review),
            "action": "approve",
            "activity_id": str(activity.id),
            "user_id": str(w.users["resident"].id),
        },
        follow_redirects=True,
    )
    assert "已审核" in done.get_data(as_text=True)
    fresh()
    row = db.session.get(Attendance, row.id, populate_existing=True)
    assert (row.status, row.review, row.points, row.makeup_minutes) == ("closed", "approved", 20, 120)
    assert ledger.balance(db.session, w.users["resident"].id) == 20
    assert db.session.scalar(sa.select(AuditEntry.actor_id).where(AuditEntry.action == "attendance.approve")) == (
        w.users["reviewer"].id
    )


def test_reminders_go_once_and_cancellations_are_told(w):
    soon = make_activity(w, start_in=timedelta(minutes=50))
    tomorrow = make_activity(w, start_in=timedelta(hours=20))
    later = make_activity(w, start_in=timedelta(days=3))
    for activity in (soon, tomorrow, later):
        signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    run_job("remind-volunteers")
    run_job("remind-volunteers")
    sent = db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == w.users["resident"].id, Notification.kind == "reminder")
        .order_by(Notification.key)
    ).all()
    me = w.users["resident"].id
    assert [n.key for n in sent] == [f"remind:day:{tomorrow.id}:{me}", f"remind:hour:{soon.id}:{me}"]
    local = soon.starts_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"将于 {local:%m月%d日 %H:%M} 开始" in sent[1].body and "花果山村河边" in sent[1].body
    # An hour before tomorrow's activity, its second reminder goes too (and only then).
    run_job("remind-volunteers", now=tomorrow.starts_at - timedelta(minutes=30))
    assert db.session.scalar(sa.select(Notification.id).where(Notification.key == f"remind:hour:{tomorrow.id}:{me}"))
    activity = soon
    activities.cancel(actor=w.users["organizer"], activity_id=activity.id, now=utcnow())
    assert db.session.scalar(sa.select(Notification).where(Notification.kind == "activity")).body.endswith("已取消。")


def test_finishing_records_no_shows_and_the_attendance_rate(w):
    activity = past_activity(w, "resident", "target")
    backfill(w, activity, "resident", timedelta(hours=1))
    activities.finish(actor=w.users["organizer"], activity_id=activity.id, now=utcnow())
    fresh()
    assert signups.attendance_rate(w.users["resident"].id) == 1.0
    assert signups.attendance_rate(w.users["target"].id) == 0.0
    assert db.session.get(Activity, activity.id).status == "finished"
