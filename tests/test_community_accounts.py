"""Sign-up, sign-in limits, tokens and the personal code, through the API as a client sees them."""

from __future__ import annotations

from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image

from community import accounts, codes
from core.db import db, utcnow
from tests import factories as f


@pytest.fixture
def county(app):
    f.region("4301", "桃江县", "county")
    f.region("430101", "桃花江镇", "township", "4301")
    return f.region("43010101", "花果山村", "village", "430101")


def register(client, **overrides):
    body = {"phone": "13912345678", "name": "张三", "password": "Abcd1234", "region_code": "43010101", **overrides}
    return client.post("/api/v1/auth/register", json=body)


def problem(response):
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_a_resident_registers_signs_in_and_reads_themselves(client, county):
    created = register(client, id_number="430922199001011237")
    assert created.status_code == 201
    user = created.get_json()
    assert user["name"] == "张三" and user["region_code"] == "43010101"
    assert user["phone"] == "139****5678"
    assert user["id_number"] == "430***********1237"
    assert user["volunteer_no"].startswith("ZY")
    assert user["balance"] == 0 and user["roles"] == []

    token = client.post("/api/v1/auth/token", json={"phone": "13912345678", "password": "Abcd1234"})
    assert token.status_code == 200
    body = token.get_json()
    assert body["user"]["id"] == user["id"] and body["expires_at"].endswith("+00:00")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["id"] == user["id"]


def test_registration_errors_are_per_field_and_in_chinese(client, county):
    response = register(client, phone="12", password="short", region_code="nowhere", id_number="430922199001011230")
    assert response.status_code == 422
    errors = problem(response)["errors"]
    assert set(errors) == {"phone", "password", "id_number"}
    assert any("手机号" in m for m in errors["phone"])
    response = register(client, region_code="nowhere")
    assert response.status_code == 422 and "region_code" in problem(response)["errors"]


@pytest.mark.parametrize("body", ["{not json", "[1, 2", '"just a string"', "[]", "null", "\xff\xfe"])
def test_malformed_or_non_object_bodies_are_refused_without_a_500(client, county, body):
    response = client.post(
        "/api/v1/auth/register", data=body.encode("utf-8", "surrogateescape"), content_type="application/json"
    )
    assert response.status_code in (400, 422)
    assert problem(response)["code"] in ("malformed_json", "validation_failed")


def test_wrong_types_are_validation_errors(client, county):
    response = client.post(
        "/api/v1/auth/register", json={"phone": 13912345678, "name": ["x"], "password": None, "region_code": {"a": 1}}
    )
    assert response.status_code == 422
    assert {"phone", "name", "password", "region_code"} <= set(problem(response)["errors"])


def test_a_phone_or_id_number_registers_once(client, county):
    assert register(client, id_number="430922199001011237").status_code == 201
    again = register(client)
    assert again.status_code == 409 and problem(again)["code"] == "phone_taken"
    same_id = register(client, phone="13912345679", id_number="430922199001011237")
    assert same_id.status_code == 409 and problem(same_id)["code"] == "id_number_taken"


def test_under_14_needs_a_guardians_consent(client, county):
    child = f"430922{utcnow().year - 10}0101123"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    child += "10X98765432"[sum(int(d) * w for d, w in zip(child, weights, strict=True)) % 11]
    refused = register(client, id_number=child)
    assert refused.status_code == 422 and "guardian_consent" in problem(refused)["errors"]
    assert register(client, id_number=child, guardian_consent=True).status_code == 201


def test_unknown_phone_is_the_same_401_as_a_wrong_password(client, county):
    response = client.post("/api/v1/auth/token", json={"phone": "13900000000", "password": "Abcd1234"})
    assert response.status_code == 401 and problem(response)["code"] == "bad_credentials"


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic abc", "Bearer ", "Token x.y.z"])
def test_invalid_tokens_are_401(client, county, header):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401 and problem(response)["code"] in ("token_invalid", "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_token_is_401_token_expired(client, county, app):
    user = f.user("43010101")
    token, _ = accounts.api_token(user, utcnow())
    app.config["API_TOKEN_TTL"] = timedelta(seconds=-1)
    try:
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    finally:
        app.config["API_TOKEN_TTL"] = timedelta(days=7)
    assert response.status_code == 401 and problem(response)["code"] == "token_expired"


def test_changing_the_password_revokes_tokens_and_personal_codes(client, county):
    user = f.user("43010101")
    headers = f.bearer(user)
    code, _ = accounts.personal_code(user, utcnow())
    accounts.change_password(user, old=f.PASSWORD, new="NewPassw0rd", now=utcnow())
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    with pytest.raises(Exception) as refused:
        accounts.resolve_personal_code(code, utcnow())
    assert refused.value.code == "code_invalid"
    db.session.expire_all()
    assert client.get("/api/v1/me", headers=f.bearer(db.session.get(type(user), user.id))).status_code == 200


def test_weak_new_passwords_are_refused(county):
    user = f.user("43010101")
    with pytest.raises(Exception) as refused:
        accounts.change_password(user, old=f.PASSWORD, new="12345678", now=utcnow())
    assert refused.value.code == "weak_password"


def test_the_personal_code_is_signed_changes_every_minute_and_expires(client, county, app):
    user = f.user("43010101")
    now = utcnow()
    code, expires_at = accounts.personal_code(user, now)
    assert accounts.resolve_personal_code(code, now).id == user.id
    assert accounts.personal_code(user, now + timedelta(seconds=60))[0] != code
    # One step of clock skew either side is accepted; later it is refused.
    assert accounts.resolve_personal_code(code, now + timedelta(seconds=60)).id == user.id
    with pytest.raises(Exception) as late:
        accounts.resolve_personal_code(code, now + timedelta(seconds=180))
    assert late.value.code == "code_expired"
    assert expires_at > now


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # signature changed
        lambda c: c.replace("MC1.", "MC2."),  # unknown version
        lambda c: ".".join([c.split(".")[0], "999999", *c.split(".")[2:]]),  # another user
        lambda c: "garbage",
        lambda c: "",
    ],
)
def test_tampered_personal_codes_are_refused(county, mangle):
    user = f.user("43010101")
    code, _ = accounts.personal_code(user, utcnow())
    with pytest.raises(Exception) as refused:
        accounts.resolve_personal_code(mangle(code), utcnow())
    assert refused.value.code == "code_invalid"


def test_the_code_png_decodes_to_the_code_the_api_gives(client, county):
    user = f.user("43010101")
    headers = f.bearer(user)
    payload = client.get("/api/v1/me/code", headers=headers).get_json()
    png = client.get("/api/v1/me/code.png", headers=headers)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Cache-Control"] == "no-store"
    import io

    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert [d.text for d in decoded] == [payload["code"]]
    assert codes.parse(payload["code"])[0] == user.id


def test_page_session_needs_a_csrf_token_for_unsafe_api_calls(client, county):
    from tests.authz import csrf_token, sign_in_page

    admin = f.grant(f.user("4301"), "admin", "region", "4301")
    sign_in_page(client, admin)
    body = {"name": "新部门", "region_code": "430101"}
    refused = client.post("/api/v1/departments", json=body)
    assert refused.status_code == 400 and problem(refused)["code"] == "csrf_failed"
    allowed = client.post("/api/v1/departments", json=body, headers={"X-CSRFToken": csrf_token(client)})
    assert allowed.status_code == 201
    assert client.get("/api/v1/me").status_code == 200  # reads need no token


def test_web_sign_in_sign_out_and_idle_timeout(client, county, app):
    from tests.authz import csrf_token

    f.user("43010101", phone="13912345678")
    form = {"phone": "13912345678", "password": f.PASSWORD, "csrf_token": csrf_token(client)}
    page = client.post("/login", data=form)
    assert page.status_code == 302
    assert client.get("/my/code").status_code == 200
    assert app.config["PERMANENT_SESSION_LIFETIME"] <= timedelta(minutes=30)
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert client.get("/my/code").status_code == 302


def test_a_form_without_csrf_token_gets_a_friendly_page(client, county):
    response = client.post("/login", data={"phone": "13912345678", "password": "x"})
    assert response.status_code == 400
    assert "页面已过期" in response.get_data(as_text=True)


def test_wrong_password_on_the_page_shows_a_message(client, county):
    from tests.authz import csrf_token

    response = client.post("/login", data={"phone": "13912345678", "password": "x", "csrf_token": csrf_token(client)})
    assert response.status_code == 401 and "手机号或密码不正确" in response.get_data(as_text=True)


def test_the_sign_in_page_never_redirects_off_site(client, county):
    from tests.authz import csrf_token

    f.user("43010101", phone="13912345678")
    response = client.post(
        "/login?next=//evil.example/x",
        data={"phone": "13912345678", "password": f.PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
