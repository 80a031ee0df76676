"""Acting for a resident without a phone (代办): an organizer or their grid worker signs them up, they
check in with a printed card, the counter reads their balance from it; every such act carries
`proxy_by`, reaches their archive and their inbox, and nobody acts for themselves or their household."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import accounts, codes
from community.models import User
from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import Forbidden, Invalid
from core.notify import Notification
from points import archive, ledger
from points.models import ArchiveEntry
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.test_points_duties import same_household
from tests.volunteer_helpers import make_activity, upcoming
from volunteer import attendance, signups, tokens
from volunteer.models import Signup


@pytest.fixture
def w(app):
    return build_world()


def proxy_sign_up(client, w, actor: str, who: str, activity_id: int):
    return client.post(
        f"/api/v1/activities/{activity_id}/signups", json={"user_id": w.users[who].id}, headers=f.bearer(w.users[actor])
    )


def inbox(user: User) -> list[Notification]:
    fresh()
    return list(db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id)))


def card_of(w, who: str = "target") -> str:
    person = accounts.issue_card(actor=w.users["admin"], user_id=w.users[who].id, now=utcnow())
    return accounts.card_code(person)


# Proxy sign-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["organizer", "grid_worker"])
def test_an_organizer_or_the_grid_worker_signs_a_resident_up_and_the_resident_is_told(client, w, actor):
    response = proxy_sign_up(client, w, actor, "target", upcoming(w))
    body = response.get_json()
    assert response.status_code == 201, body
    assert (body["user_id"], body["status"], body["proxy_by"]) == (w.users["target"].id, "confirmed", w.users[actor].id)
    [note] = inbox(w.users["target"])
    assert note.kind == "signup" and note.title.startswith("代报名")
    assert w.users[actor].name in note.body and "河道垃圾清理" in note.body
    fresh()
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "signup.create"))
    assert entry.actor_id == w.users[actor].id and entry.after["proxy_by"] == w.users[actor].id
    listed = client.get(f"/api/v1/activities/{upcoming(w)}/signups", headers=f.bearer(w.users["organizer"]))
    assert listed.get_json()["items"][0]["proxy_by"] == w.users[actor].id


def test_a_proxy_reaches_only_residents_of_their_grid_or_their_departments_area(client, w):
    for actor in ("organizer", "grid_worker"):
        refused = proxy_sign_up(client, w, actor, "stranger", upcoming(w))  # another township's grid
        assert refused.status_code == 404 and refused.get_json()["code"] == "not_a_resident"
    unknown = client.post(
        f"/api/v1/activities/{upcoming(w)}/signups", json={"user_id": 999999}, headers=f.bearer(w.users["organizer"])
    )
    assert unknown.status_code == 404 and unknown.get_json()["detail"] == refused.get_json()["detail"]
    # An admin or a reviewer is no proxy; a resident signs up only themselves.
    for actor in ("admin", "reviewer", "resident"):
        assert proxy_sign_up(client, w, actor, "target", upcoming(w)).status_code == 403
    bad = client.post(
        f"/api/v1/activities/{upcoming(w)}/signups", json={"user_id": "1"}, headers=f.bearer(w.users["organizer"])
    )
    assert bad.status_code == 422 and "user_id" in bad.get_json()["errors"]
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Signup)) == 0


def test_nobody_signs_up_themselves_or_their_household_as_a_proxy(client, w):
    grid_worker = w.users["grid_worker"]
    f.grant(w.users["target"], "grid_worker", "region", "4301010101")  # the target works the grid too
    mine = proxy_sign_up(client, w, "target", "target", upcoming(w))
    assert mine.status_code == 403 and mine.get_json()["code"] == "self_dealing"
    same_household(grid_worker, w.users["resident"])
    home = proxy_sign_up(client, w, "grid_worker", "resident", upcoming(w))
    assert home.status_code == 403 and home.get_json()["code"] == "self_dealing"
    assert proxy_sign_up(client, w, "target", "resident", upcoming(w)).status_code == 201


def test_a_resident_signs_themselves_up_as_before_and_is_told_it_is_confirmed(client, w):
    response = client.post(f"/api/v1/activities/{upcoming(w)}/signups", headers=f.bearer(w.users["resident"]))
    assert response.status_code == 201 and response.get_json()["proxy_by"] is None
    [note] = inbox(w.users["resident"])
    assert note.title.startswith("报名成功")


# The printed card --------------------------------------------------------------------------------


def test_a_card_checks_in_and_out_at_the_kiosk_on_the_residents_behalf(w):
    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    signups.sign_up_for(
        actor=w.users["grid_worker"], activity_id=activity.id, user_id=w.users["target"].id, now=utcnow()
    )
    card = card_of(w)
    came, left = utcnow() - timedelta(minutes=90), utcnow()
    organizer = w.users["organizer"]
    row, action = attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=card, now=came)
    assert action == "check_in" and row.proxy_by_id == organizer.id and row.method_in == "kiosk"
    row, action = attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=card, now=left)
    assert action == "check_out" and row.points == 15
    fresh()
    entry = db.session.scalar(sa.select(ArchiveEntry).where(ArchiveEntry.user_id == w.users["target"].id))
    assert "代办" in entry.summary and entry.details["proxy_by"] == organizer.id
    assert entry.points == 15 and archive.verify(db.session, w.users["target"].id).ok
    notes = {n.kind: n for n in inbox(w.users["target"])}
    assert "扫描您的会员卡" in notes["attendance"].body and organizer.name in notes["attendance"].body
    assert notes["points"].title == "积分到账 +15" and "会员卡" in notes["points"].body
    assert ledger.invariant_problems(db.session) == []


def test_a_phone_check_in_after_a_proxy_sign_up_still_carries_who_signed_up(w):
    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    grid_worker = w.users["grid_worker"]
    signups.sign_up_for(actor=grid_worker, activity_id=activity.id, user_id=w.users["target"].id, now=utcnow())
    came = utcnow() - timedelta(minutes=60)
    attendance.scan_venue_code(user=w.users["target"], token=tokens.rotating(activity, came)[0], now=came)
    row, _ = attendance.scan_venue_code(
        user=w.users["target"], token=tokens.rotating(activity, utcnow())[0], now=utcnow()
    )
    assert row.proxy_by_id == grid_worker.id and row.points == 10
    fresh()
    entry = db.session.scalar(sa.select(ArchiveEntry).where(ArchiveEntry.user_id == w.users["target"].id))
    assert entry.details["proxy_by"] == grid_worker.id and "（代办）" in entry.summary
    # The archive pages name the proxy (by the id the hashed entry keeps).
    from flask import current_app

    client = current_app.test_client()
    sign_in_page(client, w.users["target"])
    assert f"代办人：{grid_worker.name}" in client.get("/my/archive").get_data(as_text=True)


def test_a_new_card_voids_the_old_and_the_card_outlives_the_minute_code(w):
    activity = make_activity(w, start_in=timedelta(hours=-1), hours=3, allow_walk_in=True)
    first = card_of(w)
    second = card_of(w)
    assert first != second and codes.is_card(second)
    with pytest.raises(Invalid) as revoked:
        attendance.scan_personal_code(organizer=w.users["organizer"], activity_id=activity.id, code=first, now=utcnow())
    assert revoked.value.code == "card_revoked"
    forged = second[:-2] + ("AA" if not second.endswith("AA") else "BB")
    for bad in (forged, "MK1.1.1", "MK1.x.1.AAAA", "MK1.１.1.AAAA"):
        with pytest.raises(Invalid) as refused:
            accounts.resolve_card(bad)
        assert refused.value.code == "card_invalid"
    # A year later, after a password change, it still names the resident (it is no minute code).
    target = w.users["target"]
    accounts.change_password(target, old=f.PASSWORD, new="Another123x", now=utcnow())
    assert accounts.resolve_code(second, utcnow() + timedelta(days=365)) == (target, "card")
    # A walk-in by card: signed up on the spot by the organizer, on the resident's behalf.
    _row, action = attendance.scan_personal_code(
        organizer=w.users["organizer"], activity_id=activity.id, code=second, now=utcnow()
    )
    assert action == "check_in"
    fresh()
    signup = db.session.scalar(sa.select(Signup).where(Signup.user_id == target.id))
    assert (signup.walk_in, signup.proxy_by_id) == (True, w.users["organizer"].id)


def test_an_organizer_never_scans_their_own_card(w):
    activity = make_activity(w, start_in=timedelta(hours=-1), hours=3, allow_walk_in=True)
    organizer = w.users["organizer"]
    own = accounts.card_code(accounts.issue_card(actor=w.users["admin"], user_id=organizer.id, now=utcnow()))
    with pytest.raises(Forbidden) as refused:
        attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=own, now=utcnow())
    assert refused.value.code == "self_dealing"


def test_the_counter_shows_a_balance_from_the_card_but_a_basket_never_pays_by_it(client, w):
    f.fund(w.users["target"], 40)
    card = card_of(w)
    store = w.stores["s1"].id
    clerk = f.bearer(w.users["clerk"])
    found = client.get(f"/api/v1/stores/{store}/residents", query_string={"code": card}, headers=clerk).get_json()
    assert [(p["id"], p["balance"]) for p in found] == [(w.users["target"].id, 40)]
    basket = {"code": card, "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}
    refused = client.post(f"/api/v1/stores/{store}/redemptions", json=basket, headers=clerk)
    assert refused.status_code == 422
    fresh()
    assert ledger.balance(db.session, w.users["target"].id) == 40


def test_a_card_is_printed_by_an_admin_or_the_grid_worker_and_a_reissue_is_audited(client, w):
    target = w.users["target"]
    sign_in_page(client, w.users["grid_worker"])
    page = client.get(f"/admin/users/{target.id}/card")
    assert page.status_code == 200 and "发放会员卡" in page.get_data(as_text=True)
    token = csrf_token(client)
    for _ in range(2):
        issued = client.post(f"/admin/users/{target.id}/card", data={"csrf_token": token, "paper": "a4"})
        assert issued.status_code == 302 and "paper=a4" in issued.headers["Location"]
    fresh()
    assert db.session.get(User, target.id).card_serial == 2
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.card_issue")).all()
    assert [(e.before["card_serial"], e.after["card_serial"]) for e in entries] == [(None, 1), (1, 2)]
    shown = client.get(f"/admin/users/{target.id}/card?paper=a4").get_data(as_text=True)
    assert "card-a4.css" in shown and "第 2 张卡" in shown
    png = client.get(f"/admin/users/{target.id}/card.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    from tests.test_volunteer_service import decode

    assert decode(png.data) == accounts.card_code(db.session.get(User, target.id))


# The proxy page ----------------------------------------------------------------------------------


def test_the_proxy_page_finds_residents_in_reach_and_signs_them_up(client, w):
    activity_id = upcoming(w)
    sign_in_page(client, w.users["grid_worker"])
    page = client.get(f"/activities/{activity_id}/proxy", query_string={"q": "李"}).get_data(as_text=True)
    assert "李四" in page and w.users["target"].phone not in page  # masked
    assert "打印会员卡" in page
    elsewhere = client.get(f"/activities/{activity_id}/proxy", query_string={"q": "王五"}).get_data(as_text=True)
    assert "没有找到您可以代办的居民" in elsewhere
    tail = client.get(f"/activities/{activity_id}/proxy", query_string={"q": w.users["target"].phone[-4:]})
    assert "李四" in tail.get_data(as_text=True)
    done = client.post(
        f"/activities/{activity_id}/proxy",
        data={"csrf_token": csrf_token(client), "user_id": w.users["target"].id, "q": "李"},
        follow_redirects=True,
    )
    assert "已为「李四」代报名" in done.get_data(as_text=True)
    card = card_of(w)
    by_card = client.get(f"/activities/{activity_id}/proxy", query_string={"q": card}).get_data(as_text=True)
    assert "已在名单中：已报名" in by_card
    forged = client.get(f"/activities/{activity_id}/proxy", query_string={"q": card[:-3] + "AAA"})
    assert forged.status_code == 200 and "会员卡无效" in forged.get_data(as_text=True)
    sign_in_page(client, w.users["organizer"])
    shown = client.get(f"/organizer/activities/{activity_id}").get_data(as_text=True)
    assert "（代报名）" in shown
