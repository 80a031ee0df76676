"""User administration: search with paging and masked phones, deactivation that ends every token,
and one-time password-reset codes; an admin acts only within their reach."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import users
from community.models import PasswordReset, User
from core.audit import AuditEntry
from core.db import db, utcnow
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.factories import fresh


@pytest.fixture
def world(app) -> World:
    return build_world()


def search(client, who, **query) -> dict:
    response = client.get("/api/v1/users", query_string=query, headers=f.bearer(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def sign_in(client, phone: str, password: str):
    return client.post("/api/v1/auth/token", json={"phone": phone, "password": password})


def test_admins_find_people_by_name_phone_tail_or_volunteer_number_with_masked_phones(client, world):
    admin, target = world.users["admin"], world.users["target"]
    by_name = search(client, admin, q="李")
    assert [u["id"] for u in by_name["items"]] == [target.id]
    item = by_name["items"][0]
    assert item["phone"] == target.phone[:3] + "****" + target.phone[-4:]
    assert target.phone not in str(by_name)
    assert set(item) >= {"id", "name", "phone", "volunteer_no", "region_code", "active", "roles"}
    assert [u["id"] for u in search(client, admin, q=target.phone[-4:])["items"]] == [target.id]
    assert [u["id"] for u in search(client, admin, q=target.volunteer_no)["items"]] == [target.id]
    assert [u["id"] for u in search(client, admin, q=target.volunteer_no.lower())["items"]] == [target.id]
    assert search(client, admin, q="１２３４")["total"] == 0  # full-width digits are not digits here
    # A phone's middle digits find nobody: only the tail (or the whole number) is a key.
    assert search(client, admin, q=target.phone[3:7])["total"] == 0


def test_the_list_pages_with_totals_and_stays_in_the_admins_subtree(client, world):
    for n in range(23):
        f.user("43010201", name=f"村民{n:02d}")  # in the other township
    admin, elsewhere = world.users["admin"], world.users["admin_elsewhere"]
    first = search(client, elsewhere, per_page=10)
    assert (first["page"], first["per_page"], len(first["items"])) == (1, 10, 10)
    everyone_there = first["total"]
    assert everyone_there == 23 + 3  # the villagers, 王五, the township's admin and clerk
    last = search(client, elsewhere, per_page=10, page=3)
    assert len(last["items"]) == everyone_there - 20
    seen = {u["id"] for p in (1, 2, 3) for u in search(client, elsewhere, per_page=10, page=p)["items"]}
    assert len(seen) == everyone_there
    assert world.users["resident"].id not in seen  # another township's resident
    assert search(client, admin, region_code="43010201")["total"] == everyone_there - 1  # not the township admin
    out_of_reach = client.get("/api/v1/users?region_code=430101", headers=f.bearer(elsewhere))
    assert out_of_reach.status_code == 403
    assert client.get("/api/v1/users?per_page=0", headers=f.bearer(admin)).status_code == 422


def test_deactivation_ends_every_token_and_session_and_reactivation_lets_them_back(client, world):
    admin, target = world.users["admin"], world.users["target"]
    old_token = f.bearer(target)
    assert client.get("/api/v1/me", headers=old_token).status_code == 200
    off = client.patch(f"/api/v1/users/{target.id}", json={"active": False}, headers=f.bearer(admin))
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert client.get("/api/v1/me", headers=old_token).status_code == 401
    refused = sign_in(client, target.phone, f.PASSWORD)
    assert refused.status_code == 401 and refused.get_json()["code"] == "account_disabled"
    assert search(client, admin, active="false")["total"] == 1
    on = client.patch(f"/api/v1/users/{target.id}", json={"active": True}, headers=f.bearer(admin))
    assert on.status_code == 200 and on.get_json()["active"] is True
    assert client.get("/api/v1/me", headers=old_token).status_code == 401  # the old token stays dead
    assert sign_in(client, target.phone, f.PASSWORD).status_code == 200
    actions = db.session.scalars(
        sa.select(AuditEntry.action).where(AuditEntry.object_type == "user", AuditEntry.object_id == str(target.id))
    ).all()
    assert actions[-2:] == ["user.deactivate", "user.reactivate"]


def test_an_admin_acts_neither_on_themselves_nor_on_someone_above_their_reach(client, world):
    village_admin = f.grant(f.user("43010101", name="村管理员"), "admin", "region", "43010101")
    county_admin = world.users["admin"]
    # The county admin lives in the village, but the village admin must not take over their account.
    db.session.execute(sa.update(User).where(User.id == county_admin.id).values(region_id=world.regions["v1"].id))
    db.session.commit()
    fresh()
    for path, body in ((f"/api/v1/users/{county_admin.id}", {"active": False}),):
        response = client.patch(path, json=body, headers=f.bearer(village_admin))
        assert response.status_code == 403 and response.get_json()["code"] == "user_outranks"
    reset = client.post(f"/api/v1/users/{county_admin.id}/password-reset", headers=f.bearer(village_admin))
    assert reset.status_code == 403 and reset.get_json()["code"] == "user_outranks"
    myself = client.patch(f"/api/v1/users/{county_admin.id}", json={"active": False}, headers=f.bearer(county_admin))
    assert myself.status_code == 403 and myself.get_json()["code"] == "not_for_yourself"
    # A plain resident of the village is theirs to administer.
    ok = client.patch(
        f"/api/v1/users/{world.users['resident'].id}", json={"active": False}, headers=f.bearer(village_admin)
    )
    assert ok.status_code == 200
    fresh()
    assert db.session.get(User, county_admin.id).active is True


def test_a_reset_code_is_shown_once_kept_hashed_and_replaces_the_old_password(client, world):
    admin, target = world.users["admin"], world.users["target"]
    issued = client.post(f"/api/v1/users/{target.id}/password-reset", headers=f.bearer(admin))
    assert issued.status_code == 201 and issued.headers["Cache-Control"] == "no-store"
    body = issued.get_json()
    code = body["code"]
    assert len(code) == 8 and code.isascii() and code.isdigit() and body["user_id"] == target.id
    assert body["url"].endswith("/password/reset")
    # Stored only as a hash; the audit log never holds the code.
    stored = db.session.scalar(sa.select(PasswordReset).where(PasswordReset.user_id == target.id))
    assert code not in stored.code_hash
    audit_text = str(db.session.scalars(sa.select(AuditEntry.after)).all())
    assert code not in audit_text and "user.password_reset.issue" in str(
        db.session.scalars(sa.select(AuditEntry.action)).all()
    )
    # Until it is used, the old password still works (a forgotten one is no danger).
    old_token = sign_in(client, target.phone, f.PASSWORD).get_json()["token"]
    used = client.post(
        "/api/v1/auth/password-reset", json={"phone": target.phone, "code": code, "password": "NeuesPass42"}
    )
    assert used.status_code == 200
    assert sign_in(client, target.phone, f.PASSWORD).status_code == 401
    assert sign_in(client, target.phone, "NeuesPass42").status_code == 200
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    again = client.post(
        "/api/v1/auth/password-reset", json={"phone": target.phone, "code": code, "password": "Anders12345"}
    )
    assert again.status_code == 422 and again.get_json()["code"] == "reset_code_invalid"


def test_a_reset_code_expires_is_replaced_by_a_newer_one_and_wears_out_after_wrong_tries(app, world):
    from core.errors import Invalid

    admin, target = world.users["admin"], world.users["target"]
    now = utcnow()
    first = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    second = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    with pytest.raises(Invalid):
        users.reset_password(phone=target.phone, code=first.code, password="NeuesPass42", now=now)
    with pytest.raises(Invalid):  # too late
        users.reset_password(phone=target.phone, code=second.code, password="NeuesPass42", now=now + timedelta(days=2))
    third = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    wrong = f"{(int(third.code) + 1) % 10**8:08d}"
    for _ in range(app.config["PASSWORD_RESET_MAX_FAILURES"]):
        with pytest.raises(Invalid):
            users.reset_password(phone=target.phone, code=wrong, password="NeuesPass42", now=now)
    with pytest.raises(Invalid):  # worn out: the right code no longer works either
        users.reset_password(phone=target.phone, code=third.code, password="NeuesPass42", now=now)
    fourth = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    with pytest.raises(Invalid) as weak:  # a weak password spends no try
        users.reset_password(phone=target.phone, code=fourth.code, password="123", now=now)
    assert weak.value.code == "weak_password"
    users.reset_password(phone=target.phone, code=f"{fourth.code[:4]} {fourth.code[4:]}", password="Neu3sPass", now=now)


def test_a_reset_clears_a_sign_in_lock_and_deactivation_voids_open_codes(app, world):
    from core.errors import Conflict, Invalid

    admin, target = world.users["admin"], world.users["target"]
    now = utcnow()
    db.session.execute(
        sa.update(User).where(User.id == target.id).values(locked_until=now + timedelta(hours=1), lockouts=2)
    )
    db.session.commit()
    issued = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    user = users.reset_password(phone=target.phone, code=issued.code, password="NeuesPass42", now=now)
    assert user.locked_until is None and user.lockouts == 0
    open_code = users.issue_password_reset(actor=admin, user_id=target.id, now=now)
    users.set_active(actor=admin, user_id=target.id, active=False, now=now)
    with pytest.raises(Invalid):
        users.reset_password(phone=target.phone, code=open_code.code, password="Anders12345", now=now)
    with pytest.raises(Conflict):  # no code for a deactivated account
        users.issue_password_reset(actor=admin, user_id=target.id, now=now)


def test_the_admin_page_shows_the_code_once_and_the_resident_sets_a_password_on_a_page(client, world):
    admin, target = world.users["admin"], world.users["target"]
    sign_in_page(client, admin)
    page = client.get("/admin/users?q=李").get_data(as_text=True)
    assert "李四" in page and target.phone not in page and target.phone[-4:] in page
    shown = client.post(f"/admin/users/{target.id}/password-reset", data={"csrf_token": csrf_token(client)})
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    html = shown.get_data(as_text=True)
    import re

    code = "".join(re.search(r'id="reset-code">(\d{4}) (\d{4})<', html).groups())
    assert code not in client.get("/admin/users?q=李").get_data(as_text=True)

    resident = client.application.test_client()
    form = resident.get("/password/reset").get_data(as_text=True)
    assert "重置码" in form
    wrong = resident.post(
        "/password/reset",
        data={"csrf_token": csrf_token(resident), "phone": target.phone, "code": "00000000", "password": "NeuesPass42"},
    )
    assert wrong.status_code == 422 and target.phone in wrong.get_data(as_text=True)  # kept as typed
    done = resident.post(
        "/password/reset",
        data={"csrf_token": csrf_token(resident), "phone": target.phone, "code": code, "password": "NeuesPass42"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert sign_in(resident, target.phone, "NeuesPass42").status_code == 200


def test_the_users_page_pages_and_deactivates(client, world):
    for n in range(25):
        f.user("4301010101", name=f"村民{n:02d}")
    sign_in_page(client, world.users["admin"])
    first = client.get("/admin/users").get_data(as_text=True)
    assert "共 " in first and "第 1/" in first and "下一页" in first
    second = client.get("/admin/users?page=2").get_data(as_text=True)
    assert "上一页" in second
    assert client.get("/admin/users?page=999").status_code == 200  # past the end: the last page
    assert client.get("/admin/users?page=²").status_code == 200
    target = world.users["target"]
    off = client.post(f"/admin/users/{target.id}/active", data={"csrf_token": csrf_token(client), "active": "0"})
    assert off.status_code == 302
    fresh()
    assert db.session.get(User, target.id).active is False
    assert "已停用" in client.get("/admin/users?status=inactive").get_data(as_text=True)
