"""The second factor (issue 13, Security): enrolment with a QR, codes accepted once, wrong codes
counted toward the lock-out, recovery codes, an admin's reset, and the region rule that admins
must use it (the nearest region wins; a requirement from above is lifted only from above)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import signin, totp
from community.models import RecoveryCode, User
from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import DomainError
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.factories import fresh

STEP = timedelta(seconds=totp.INTERVAL)


@pytest.fixture
def w(app) -> World:
    return build_world()


def enrol(user: User, *, ago: timedelta = 2 * STEP) -> tuple[str, list[str]]:
    """Enrol `user` as the pages do, `ago` in the past (so that a code of now is a later step)."""
    then = utcnow() - ago
    enrolment = totp.start(user, then)
    codes = totp.confirm(user, totp.code_at(enrolment.secret, then), then)
    fresh()
    return enrolment.secret, codes


def token_request(client, user: User, *, otp: str | None = None, ip: str = "127.0.0.1"):
    body = {"phone": user.phone, "password": f.PASSWORD}
    if otp is not None:
        body["otp"] = otp
    return client.post("/api/v1/auth/token", json=body, environ_base={"REMOTE_ADDR": ip})


def actions(user: User) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEntry.action)
            .where(AuditEntry.object_type == "user", AuditEntry.object_id == str(user.id))
            .where(AuditEntry.action.startswith("user.totp"))
            .order_by(AuditEntry.id)
        )
    )


# Enrolment ------------------------------------------------------------------------------------


def test_enrolment_completes_only_with_a_correct_code_and_keeps_the_secret_encrypted(client, w):
    user = w.users["organizer"]
    headers = f.bearer(user)
    started = client.post("/api/v1/me/totp", headers=headers)
    assert started.status_code == 201, started.get_json()
    secret, uri = started.get_json()["secret"], started.get_json()["otpauth_uri"]
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "issuer=" in uri
    assert started.headers["Cache-Control"] == "no-store"

    wrong = client.post("/api/v1/me/totp/confirm", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "otp_invalid"
    assert client.get("/api/v1/me/totp", headers=headers).get_json()["enabled"] is False

    right = client.post("/api/v1/me/totp/confirm", json={"code": totp.code_at(secret, utcnow())}, headers=headers)
    assert right.status_code == 200, right.get_json()
    codes = right.get_json()["recovery_codes"]
    assert len(codes) == totp.RECOVERY_CODES == len(set(codes))
    status = client.get("/api/v1/me/totp", headers=headers).get_json()
    assert status["enabled"] is True and status["recovery_codes_left"] == totp.RECOVERY_CODES

    fresh()
    stored = db.session.get(User, user.id)
    assert stored.totp_secret and secret not in stored.totp_secret and stored.totp_pending is None
    hashes = db.session.scalars(sa.select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert not {c.replace("-", "") for c in codes} & set(hashes)
    assert actions(user) == ["user.totp.enrol"]
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.totp.enrol"))
    assert secret not in str(entry.after) and not any(c in str(entry.after) for c in codes)
    # Enrolled: a second start is refused rather than replacing the working secret.
    assert client.post("/api/v1/me/totp", headers=headers).status_code == 409


def test_the_enrolment_page_shows_the_qr_and_the_secret_then_the_recovery_codes_once(client, w):
    user = w.users["reviewer"]
    sign_in_page(client, user)
    token = csrf_token(client)
    assert client.post("/my/security/start", data={"csrf_token": token}).status_code == 302
    page = client.get("/my/security").get_data(as_text=True)
    fresh()
    secret = totp.pending(db.session.get(User, user.id)).secret
    assert secret[:4] in page and "/my/security/qr.png" in page
    qr = client.get("/my/security/qr.png")
    assert qr.status_code == 200 and qr.mimetype == "image/png" and qr.headers["Cache-Control"] == "no-store"

    wrong = client.post("/my/security/confirm", data={"csrf_token": token, "code": "123"})
    assert wrong.status_code == 422 and "验证码不正确" in wrong.get_data(as_text=True)
    done = client.post("/my/security/confirm", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    html = done.get_data(as_text=True)
    assert html.count("<li>") >= totp.RECOVERY_CODES and "只显示这一次" in html
    assert "已启用" in client.get("/my/security").get_data(as_text=True)
    assert client.get("/my/security/qr.png").status_code == 404  # the secret is never shown again


# Signing in with the code -------------------------------------------------------------------------


def test_the_token_needs_the_code_and_a_code_works_once(client, w):
    user = w.users["admin"]
    secret, _ = enrol(user)
    for otp in (None, ""):
        missing = token_request(client, user, otp=otp)
        assert missing.status_code == 401 and missing.get_json()["code"] == "otp_required"
        assert missing.mimetype == "application/problem+json" and "remaining_attempts" in missing.get_json()
    wrong = token_request(client, user, otp="000000" if totp.code_at(secret, utcnow()) != "000000" else "111111")
    assert wrong.status_code == 401 and wrong.get_json()["code"] == "otp_invalid"
    code = totp.code_at(secret, utcnow())
    ok = token_request(client, user, otp=code)
    assert ok.status_code == 200 and ok.get_json()["token"]
    replay = token_request(client, user, otp=code)
    assert replay.status_code == 401 and replay.get_json()["code"] == "otp_invalid"
    # An older step's code, valid a minute ago, is refused too (only later steps count).
    older = token_request(client, user, otp=totp.code_at(secret, utcnow() - STEP))
    assert older.status_code == 401


def test_one_code_sent_by_four_clients_at_once_signs_in_one(app, w):
    from tests.test_core_concurrency import run_threads

    user = w.users["admin"]
    secret, _ = enrol(user)
    phone, now = user.phone, utcnow()
    code = totp.code_at(secret, now)

    def sign_in(i: int):
        return signin.authenticate(phone, f.PASSWORD, ip=f"10.8.0.{i}", now=now, otp=code).id

    results = run_threads(app, 4, sign_in)
    assert sum(1 for r in results if r == user.id) == 1, results
    assert all(isinstance(r, signin.BadCode) for r in results if r != user.id), results


def test_wrong_codes_count_toward_the_lock_out_so_codes_cannot_be_guessed(app, w):
    user = w.users["admin"]
    secret, _ = enrol(user)
    now = utcnow()
    good = totp.code_at(secret, now)
    wrong = f"{(int(good) + 1) % 10**6:06d}"
    outcomes = []
    for i in range(5):
        try:
            signin.authenticate(user.phone, f.PASSWORD, ip=f"10.7.0.{i}", now=now, otp=wrong)
        except DomainError as refusal:
            outcomes.append(refusal.code)
    assert outcomes == ["otp_invalid"] * 4 + ["account_locked"]
    with pytest.raises(signin.SignInRefused):
        signin.authenticate(user.phone, f.PASSWORD, ip="10.7.1.1", now=now, otp=good)
    # The right code did not get through the lock, nor was it used up by the refused attempt.
    fresh()
    assert db.session.get(User, user.id).totp_last_step < totp._step(now)


def test_a_recovery_code_signs_in_once_and_is_audited(client, w):
    user = w.users["organizer"]
    _, codes = enrol(user)
    first = token_request(client, user, otp=codes[0].upper())
    assert first.status_code == 200, first.get_json()
    again = token_request(client, user, otp=codes[0])
    assert again.status_code == 401 and again.get_json()["code"] == "otp_invalid"
    assert "user.totp.recovery_use" in actions(user)
    status = client.get("/api/v1/me/totp", headers={"Authorization": f"Bearer {first.get_json()['token']}"})
    assert status.get_json()["recovery_codes_left"] == totp.RECOVERY_CODES - 1


def test_the_page_sign_in_asks_for_the_code_after_the_password(client, w):
    user = w.users["reviewer"]
    secret, _ = enrol(user)
    token = csrf_token(client)
    step1 = client.post("/login?next=/my/code", data={"csrf_token": token, "phone": user.phone, "password": f.PASSWORD})
    assert step1.status_code == 302 and step1.headers["Location"].endswith("/login/code")
    assert client.get("/my/code").status_code == 302  # not signed in before the code
    wrong = client.post("/login/code", data={"csrf_token": token, "code": "12345"})
    assert wrong.status_code == 401 and 'data-code="otp_invalid"' in wrong.get_data(as_text=True)
    done = client.post("/login/code", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert done.status_code == 302 and done.headers["Location"] == "/my/code"
    assert client.get("/my/code").status_code == 200
    # The password step counted as a failure until the right code came; the wrong code stays one.
    from community.models import LoginAttempt

    oks = db.session.scalars(
        sa.select(LoginAttempt.ok).where(LoginAttempt.phone == user.phone).order_by(LoginAttempt.id)
    ).all()
    assert oks == [True, False, True]


def test_a_password_changed_between_the_steps_voids_the_code_step(client, w):
    from community import accounts

    user = w.users["reviewer"]
    secret, _ = enrol(user)
    token = csrf_token(client)
    client.post("/login", data={"csrf_token": token, "phone": user.phone, "password": f.PASSWORD})
    accounts.change_password(db.session.get(User, user.id), old=f.PASSWORD, new="Another2026x", now=utcnow())
    late = client.post("/login/code", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert late.status_code == 302 and late.headers["Location"].startswith("/login")
    assert client.get("/my/code").status_code == 302


def test_the_code_step_expires(client, w):
    user = w.users["reviewer"]
    secret, _ = enrol(user)
    token = csrf_token(client)
    client.post("/login", data={"csrf_token": token, "phone": user.phone, "password": f.PASSWORD})
    with client.session_transaction() as session:
        session["otp_login"]["at"] -= 6 * 60
        session.modified = True
    late = client.post("/login/code", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert late.status_code == 302 and late.headers["Location"].startswith("/login")
    assert client.get("/my/code").status_code == 302


# Turning it off, renewing codes, an admin's reset -----------------------------------------------


def test_one_turns_off_ones_own_second_factor_only_with_ones_own_code(client, w):
    user = w.users["organizer"]
    secret, _ = enrol(user)
    headers = f.bearer(user)
    wrong = client.post("/api/v1/me/totp/disable", json={"code": "99999"}, headers=headers)
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "otp_invalid"
    assert client.get("/api/v1/me/totp", headers=headers).get_json()["enabled"] is True
    off = client.post("/api/v1/me/totp/disable", json={"code": totp.code_at(secret, utcnow())}, headers=headers)
    assert off.status_code == 200 and off.get_json()["enabled"] is False
    assert actions(user) == ["user.totp.enrol", "user.totp.disable"]
    assert token_request(client, user).status_code == 200  # the password alone again
    assert db.session.scalar(sa.select(sa.func.count()).where(RecoveryCode.user_id == user.id)) == 0


def test_new_recovery_codes_void_the_old_ones(client, w):
    user = w.users["organizer"]
    secret, old = enrol(user)
    renewed = client.post(
        "/api/v1/me/totp/recovery-codes", json={"code": totp.code_at(secret, utcnow())}, headers=f.bearer(user)
    )
    assert renewed.status_code == 201
    new = renewed.get_json()["recovery_codes"]
    assert not set(new) & set(old)
    assert token_request(client, user, otp=old[1]).status_code == 401
    assert token_request(client, user, otp=new[1]).status_code == 200
    assert "user.totp.recovery_regenerate" in actions(user)


def test_an_admin_resets_the_second_factor_of_someone_they_outrank_only(client, w):
    admin, target = w.users["admin"], w.users["organizer"]
    enrol(target)
    enrol(admin)
    assert client.post(f"/api/v1/users/{admin.id}/totp/reset", headers=f.bearer(admin)).status_code == 403
    # A village admin cannot reset the county admin who lives in the village.
    village_admin = f.grant(f.user("43010101", name="村管理"), "admin", "region", "43010101")
    county_admin_here = f.grant(f.user("43010101", name="县管理"), "admin", "region", "4301")
    enrol(county_admin_here)
    refused = client.post(f"/api/v1/users/{county_admin_here.id}/totp/reset", headers=f.bearer(village_admin))
    assert refused.status_code == 403 and refused.get_json()["code"] == "user_outranks"
    elsewhere = client.post(f"/api/v1/users/{target.id}/totp/reset", headers=f.bearer(w.users["admin_elsewhere"]))
    assert elsewhere.status_code == 404

    reset = client.post(f"/api/v1/users/{target.id}/totp/reset", headers=f.bearer(admin))
    assert reset.status_code == 200 and reset.get_json()["totp_enabled"] is False
    assert token_request(client, target).status_code == 200
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.totp.reset"))
    assert entry.actor_id == admin.id and entry.object_id == str(target.id)
    assert client.post(f"/api/v1/users/{target.id}/totp/reset", headers=f.bearer(admin)).status_code == 409


def test_a_changed_secret_key_leaves_an_unreadable_secret_said_plainly(app, client, w):
    user = w.users["organizer"]
    enrol(user)
    app.config["SECRET_KEY"] = "another-key-entirely"
    refused = token_request(client, user, otp="123456")
    assert refused.status_code == 409 and refused.get_json()["code"] == "otp_unreadable"


# The region rule ------------------------------------------------------------------------------


def put_rule(client, actor: User, code: str, value: bool | None):
    return client.put(f"/api/v1/regions/{code}/security", json={"admin_totp_required": value}, headers=f.bearer(actor))


def test_requiring_it_signs_out_the_unenrolled_admins_it_binds_and_they_must_enrol(client, w):
    admin, elsewhere, resident = w.users["admin"], w.users["admin_elsewhere"], w.users["resident"]
    enrol(admin)
    old_token = f.bearer(elsewhere)
    resident_token = f.bearer(resident)
    turned = put_rule(client, admin, "4301", True)
    assert turned.status_code == 200, turned.get_json()
    assert turned.get_json() == {
        "region_code": "4301",
        "admin_totp_required": True,
        "own": True,
        "source_region_code": "4301",
    }
    assert client.get("/api/v1/me", headers=old_token).status_code == 401  # signed out
    assert client.get("/api/v1/me", headers=resident_token).status_code == 200  # residents untouched
    refused = token_request(client, elsewhere)
    assert refused.status_code == 403 and refused.get_json()["code"] == "otp_enrolment_required"
    assert token_request(client, w.users["organizer"]).status_code == 200  # not an admin
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "region_security.set"))
    assert entry.after == {"admin_totp_required": True, "signed_out": 1} and entry.actor_id == admin.id

    # On the pages: straight to enrolment after the password, and nowhere else until done.
    token = csrf_token(client)
    signed = client.post("/login", data={"csrf_token": token, "phone": elsewhere.phone, "password": f.PASSWORD})
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/my/security")
    for path in ("/admin/users", "/my/code", "/"):
        blocked = client.get(path)
        assert blocked.status_code == 302 and blocked.headers["Location"].endswith("/my/security"), path
    assert client.get("/api/v1/me").get_json()["code"] == "otp_enrolment_required"
    client.post("/my/security/start", data={"csrf_token": token})
    fresh()
    secret = totp.pending(db.session.get(User, elsewhere.id)).secret
    done = client.post("/my/security/confirm", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert done.status_code == 200
    assert client.get("/admin/users").status_code == 200


def test_a_new_admin_where_it_is_required_is_signed_out_to_enrol(client, w):
    admin = w.users["admin"]
    enrol(admin)
    put_rule(client, admin, "4301", True)
    organizer = w.users["organizer"]
    before = f.bearer(organizer)
    granted = client.post(
        "/api/v1/roles",
        json={"user_id": organizer.id, "role": "admin", "scope_type": "region", "scope_id": "430101"},
        headers=f.bearer(admin),
    )
    assert granted.status_code == 201
    assert client.get("/api/v1/me", headers=before).status_code == 401
    assert token_request(client, organizer).get_json()["code"] == "otp_enrolment_required"


def test_the_operator_resets_a_top_admin_nobody_outranks(app, w):
    admin = w.users["admin"]
    enrol(admin)
    result = app.test_cli_runner().invoke(args=["admin", "totp-reset", "--phone", admin.phone])
    assert result.exit_code == 0, result.output
    fresh()
    assert db.session.get(User, admin.id).totp_secret is None
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "user.totp.reset"))
    assert entry.actor_id is None and entry.object_id == str(admin.id)
    again = app.test_cli_runner().invoke(args=["admin", "totp-reset", "--phone", admin.phone])
    assert again.exit_code != 0 and "尚未启用" in again.output


def test_a_bound_admin_who_turns_it_off_through_the_api_is_signed_out_to_enrol(client, w):
    admin = w.users["admin"]
    secret, _ = enrol(admin)
    put_rule(client, admin, "4301", True)
    headers = f.bearer(admin)
    off = client.post("/api/v1/me/totp/disable", json={"code": totp.code_at(secret, utcnow())}, headers=headers)
    assert off.status_code == 200 and off.get_json()["required"] is True
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert token_request(client, admin).get_json()["code"] == "otp_enrolment_required"


def test_the_nearest_region_wins_and_a_requirement_from_above_is_lifted_only_from_above(client, w):
    admin, elsewhere = w.users["admin"], w.users["admin_elsewhere"]
    # Not required anywhere: the township admin may require it of their own township.
    assert put_rule(client, elsewhere, "430102", True).get_json()["admin_totp_required"] is True
    assert totp.required_for(elsewhere) and not totp.required_for(admin)
    assert put_rule(client, elsewhere, "430102", None).get_json()["admin_totp_required"] is False

    enrol(admin)
    put_rule(client, admin, "4301", True)
    below = client.get("/api/v1/regions/430102/security", headers=f.bearer(admin)).get_json()
    assert below == {"region_code": "430102", "admin_totp_required": True, "own": None, "source_region_code": "4301"}
    enrol(elsewhere)
    lifted = put_rule(client, elsewhere, "430102", False)
    assert lifted.status_code == 403 and lifted.get_json()["code"] == "otp_rule_above"
    # The county admin may make an exception for the township: the nearest region wins.
    assert put_rule(client, admin, "430102", False).get_json()["admin_totp_required"] is False
    fresh()
    assert not totp.required_for(db.session.get(User, elsewhere.id))
    assert totp.required_for(db.session.get(User, admin.id))
    assert put_rule(client, elsewhere, "430101", True).status_code == 404  # not their region
    assert put_rule(client, w.users["reviewer"], "430101", True).status_code == 403


def test_the_admin_security_page_sets_the_rule(client, w):
    admin = w.users["admin"]
    enrol(admin)
    sign_in_page(client, admin)
    token = csrf_token(client)
    saved = client.post("/admin/security", data={"csrf_token": token, "region_code": "430101", "setting": "required"})
    assert saved.status_code == 302
    page = client.get("/admin/security").get_data(as_text=True)
    assert 'data-region="430101"' in page and "本地区设置" in page
    bad = client.post("/admin/security", data={"csrf_token": token, "region_code": "430101", "setting": "maybe"})
    assert bad.status_code == 302
    assert "请选择是否要求" in client.get("/admin/security").get_data(as_text=True)


def test_the_security_page_renews_codes_and_turns_off_with_ones_own_code(client, w):
    user = w.users["reviewer"]
    secret, old = enrol(user, ago=3 * STEP)
    sign_in_page(client, user)
    token = csrf_token(client)
    renewed = client.post(
        "/my/security/recovery-codes", data={"csrf_token": token, "code": totp.code_at(secret, utcnow() - STEP)}
    )
    html = renewed.get_data(as_text=True)
    assert renewed.status_code == 200 and "之前的恢复码已全部作废" in html and old[0] not in html
    wrong = client.post("/my/security/disable", data={"csrf_token": token, "code": old[0]})
    assert wrong.status_code == 302
    assert "两步验证码不正确" in client.get("/my/security").get_data(as_text=True)
    fresh()
    assert db.session.get(User, user.id).totp_secret is not None
    off = client.post("/my/security/disable", data={"csrf_token": token, "code": totp.code_at(secret, utcnow())})
    assert off.status_code == 302
    assert "已关闭两步验证" in client.get("/my/security").get_data(as_text=True)
    fresh()
    assert db.session.get(User, user.id).totp_secret is None


def test_closing_an_account_drops_its_second_factor(app, w):
    from community import privacy

    resident = w.users["resident"]
    enrol(resident)
    privacy.close(user=resident, password=f.PASSWORD, now=utcnow())
    fresh()
    closed = db.session.get(User, resident.id)
    assert closed.totp_secret is None and closed.totp_enabled_at is None
    assert db.session.scalar(sa.select(sa.func.count()).where(RecoveryCode.user_id == resident.id)) == 0
