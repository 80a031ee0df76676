"""Residents' rights (PIPL): a resident takes their own data away (JSON and .xlsx) and closes their
account: personal data anonymized, records kept under a pseudonym, the archive still verifies."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from community import accounts, privacy
from community.models import LoginAttempt, User
from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import Invalid
from core.notify import Notification
from exchange import inventory, redemption
from points import archive, deeds, ledger
from points.models import ArchiveEntry, Transfer
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups, tokens
from volunteer.models import Attendance, Signup

ID_NUMBER = "11010519491231002X"


@pytest.fixture
def w(app):
    world = build_world()
    world.users["elder"] = f.user("4301010101", name="陈老伯", id_number=ID_NUMBER)
    return world


def served(w, who: str = "elder") -> None:
    """An hour of service, checked in and out by the venue code: 10 points and an archive entry."""
    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    signups.sign_up(user=w.users[who], activity_id=activity.id, now=utcnow())
    came = utcnow() - timedelta(minutes=60)
    attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, came)[0], now=came)
    attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, utcnow())[0], now=utcnow())


def redeemed(w, who: str = "elder"):
    return redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["rice"].id, 1)],
        key=f"rights-{who}",
        resident_id=w.users[who].id,
        now=utcnow(),
    )


def a_deed(w, who: str = "elder"):
    return deeds.record(
        actor=w.users["grid_worker"],
        resident_id=w.users[who].id,
        deed_type="haorenhaoshi",
        description="帮邻居修好了水管",
        occurred_on=date.today(),
        now=utcnow(),
    )


def close(client, who: User, password: str = f.PASSWORD):
    return client.post("/api/v1/me/close", json={"password": password}, headers=f.bearer(who))


# Export ------------------------------------------------------------------------------------------


def test_the_export_holds_everything_kept_about_the_resident_and_nothing_of_others(client, w):
    served(w)
    made = redeemed(w)
    a_deed(w)
    served(w, "target")  # someone else's records stay out
    response = client.get("/api/v1/me/export", headers=f.bearer(w.users["elder"]))
    assert response.status_code == 200
    data = response.get_json()
    me = w.users["elder"]
    profile = data["profile"]
    assert (profile["name"], profile["phone"], profile["volunteer_no"]) == ("陈老伯", me.phone, me.volunteer_no)
    assert profile["id_number"] == "110***********002X" and profile["region_code"] == "4301010101"
    assert [s["activity"] for s in data["signups"]] == ["河道垃圾清理"]
    [served_row] = data["attendances"]
    assert (served_row["credited_minutes"], served_row["points"], served_row["status"]) == (60, 10, "closed")
    assert [e["kind"] for e in data["archive"]] == ["service", "redemption"]
    assert data["archive"][0]["hash"] == archive.entries(db.session, me.id)[0].hash
    assert data["account"][0]["balance"] == 5 and data["account"][0]["points_earned"] == 10
    [bought] = data["redemptions"]
    assert (bought["receipt_no"], bought["goods"], bought["total_points"]) == (made.receipt_no, "大米×1", 5)
    [deed] = data["deeds"]
    assert (deed["type"], deed["status"], deed["description"]) == ("好人好事", "pending", "帮邻居修好了水管")
    assert {n["kind"] for n in data["notifications"]} >= {"signup", "points", "redemption"}
    assert "certificates" in data and data["exported_at"].endswith("+08:00")


def test_the_export_page_downloads_a_workbook_with_a_sheet_per_kind_of_record(client, w):
    served(w)
    sign_in_page(client, w.users["elder"])
    page = client.get("/my/data").get_data(as_text=True)
    assert "签到与服务时长：1 条" in page and w.users["elder"].phone in page
    response = client.get("/my/data.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[0] == "个人信息"
    assert {"签到与服务时长", "道德档案", "兑换记录", "好人好事与扣分", "报名", "消息"} <= set(book.sheetnames)
    profile = {row[0]: row[1] for row in book["个人信息"].iter_rows(values_only=True)}
    assert profile["姓名"] == "陈老伯" and profile["手机号"] == w.users["elder"].phone
    rows = list(book["签到与服务时长"].iter_rows(values_only=True))
    assert rows[0][:2] == ("activity_id", "activity") and rows[1][1] == "河道垃圾清理"
    assert list(book["兑换记录"].iter_rows(values_only=True)) == [("（无记录）",)]


def test_a_text_that_looks_like_a_formula_stays_text_in_the_workbook(w):
    assert privacy._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and privacy._cell("张三") == "张三"


# Closing the account -----------------------------------------------------------------------------


def test_closing_anonymizes_the_person_and_keeps_every_record_under_a_pseudonym(client, w):
    me = w.users["elder"]
    served(w)
    redeemed(w)
    card = accounts.card_code(accounts.issue_card(actor=w.users["admin"], user_id=me.id, now=utcnow()))
    later = make_activity(w, start_in=timedelta(days=2), capacity=1)
    signups.sign_up(user=me, activity_id=later.id, now=utcnow())
    waiting = signups.sign_up(user=w.users["target"], activity_id=later.id, now=utcnow())
    assert waiting.status == "waitlisted"
    token = f.bearer(me)
    client.post("/api/v1/auth/token", json={"phone": me.phone, "password": "wrong-password-1"})
    fresh()
    hashes = [e.hash for e in archive.entries(db.session, me.id)]
    transfers = db.session.scalar(sa.select(sa.func.count()).select_from(Transfer))
    phone = me.phone

    response = close(client, me)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "closed",
        "pseudonym": f"已注销用户-{me.id}",
        "closed_at": response.get_json()["closed_at"],
    }
    fresh()
    person = db.session.get(User, me.id)
    assert person.name == f"已注销用户-{me.id}" and person.phone == f"closed-{me.id}"
    assert (person.id_number_digest, person.id_number_masked, person.household_id, person.card_serial) == (
        None,
        None,
        None,
        None,
    )
    assert not person.active and person.closed_at is not None and person.volunteer_no == me.volunteer_no
    assert db.session.scalar(sa.select(sa.func.count()).where(LoginAttempt.phone == phone)) == 0
    # Nothing signs in any more: not the old token, the password, the card, the personal code.
    assert client.get("/api/v1/me", headers=token).status_code == 401
    assert client.post("/api/v1/auth/token", json={"phone": phone, "password": f.PASSWORD}).status_code == 401
    with pytest.raises(Invalid) as refused:
        accounts.resolve_card(card)
    assert refused.value.code == "card_invalid"
    # Every record stays, unchanged, and still adds up.
    assert [e.hash for e in archive.entries(db.session, me.id)] == hashes
    assert archive.verify(db.session, me.id).ok
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == transfers
    assert ledger.invariant_problems(db.session) == [] and inventory.invariant_problems(db.session) == []
    assert db.session.scalar(sa.select(Attendance.points).where(Attendance.user_id == me.id)) == 10
    # The future sign-up is cancelled and its place goes to the waitlist.
    mine = db.session.scalar(sa.select(Signup).where(Signup.user_id == me.id, Signup.activity_id == later.id))
    assert mine.status == "cancelled" and db.session.get(Signup, waiting.id).status == "confirmed"
    # The inbox is gone (as are the sign-in records, above); the audit entry keeps no name.
    assert db.session.scalar(sa.select(sa.func.count()).where(Notification.user_id == me.id)) == 0
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.close"))
    assert "陈老伯" not in str(entry.after) and entry.actor_name == f"已注销用户-{me.id}"
    # The phone and the ID number are free again: the person may register anew.
    again = f.user("4301010101", name="陈老伯", phone=phone, id_number=ID_NUMBER)
    assert again.id != me.id


def test_closing_needs_the_password_and_refuses_while_something_is_open(client, w):
    me = w.users["elder"]
    wrong = close(client, me, "not-my-password1")
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "password_incorrect"
    activity = make_activity(w, start_in=timedelta(hours=-1), hours=3)
    signups.sign_up(user=me, activity_id=activity.id, now=utcnow())
    came = utcnow() - timedelta(minutes=30)
    attendance.scan_venue_code(user=me, token=tokens.rotating(activity, came)[0], now=came)
    inside = close(client, me)
    assert inside.status_code == 409 and inside.get_json()["code"] == "close_attendance_open"
    assert "河道垃圾清理" in inside.get_json()["detail"]
    # Checked out, then a make-up proposed for more than was scanned: it waits for a reviewer.
    attendance.scan_venue_code(user=me, token=tokens.rotating(activity, utcnow())[0], now=utcnow())
    attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity.id,
        user_id=me.id,
        checked_in_at=activity.starts_at,
        checked_out_at=utcnow(),
        reason="提前到场帮忙布置",
        now=utcnow(),
    )
    pending = close(client, me)
    assert pending.status_code == 409 and pending.get_json()["code"] == "close_makeup_pending"
    staff = close(client, w.users["clerk"])
    assert staff.status_code == 409 and staff.get_json()["code"] == "close_has_roles"
    fresh()
    assert db.session.get(User, me.id).name == "陈老伯" and db.session.get(User, me.id).active
    # Reviewed, it closes.
    attendance.approve(actor=w.users["reviewer"], activity_id=activity.id, user_id=me.id, now=utcnow())
    assert close(client, me).status_code == 200
    again = client.post("/api/v1/me/close", json={"password": f.PASSWORD}, headers=f.bearer(w.users["resident"]))
    assert again.status_code == 200


def test_the_close_page_asks_for_confirmation_closes_and_signs_out(client, w):
    me = w.users["elder"]
    sign_in_page(client, me)
    page = client.get("/my/close").get_data(as_text=True)
    assert "以化名保留" in page and "当前积分" in page
    unconfirmed = client.post("/my/close", data={"csrf_token": csrf_token(client), "password": f.PASSWORD})
    assert unconfirmed.status_code == 422 and "请确认您已了解注销的后果" in unconfirmed.get_data(as_text=True)
    done = client.post(
        "/my/close",
        data={"csrf_token": csrf_token(client), "password": f.PASSWORD, "understood": "1"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "账号已注销" in done.get_data(as_text=True)
    assert client.get("/my/data").status_code == 302  # signed out
    fresh()
    assert db.session.get(User, me.id).closed_at is not None


def test_the_privacy_page_says_what_closing_keeps_and_why(client, w):
    text = client.get("/privacy").get_data(as_text=True)
    for words in ("已注销用户", "以化名保留", "道德档案", "积分流水", "审计日志", "暂不能注销", "代办"):
        assert words in text, words


def test_the_archive_of_a_closed_account_keeps_its_entries_and_verifies(w):
    served(w)
    me = w.users["elder"]
    privacy.close(user=me, password=f.PASSWORD, now=utcnow())
    fresh()
    entries = db.session.scalars(sa.select(ArchiveEntry).where(ArchiveEntry.user_id == me.id)).all()
    assert len(entries) == 1 and all(archive.entry_hash(e) == e.hash for e in entries)
    assert "陈老伯" not in entries[0].summary
