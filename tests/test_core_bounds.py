"""Bounds at the edge: every integer a client sends is ASCII digits within what its column holds, and
anything else is a clear 4xx — problem+json on the API, a friendly page that keeps what was typed on
the pages — never a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from marshmallow import fields, validate

from core import bounds
from core.api import routes_of
from core.bounds import INT_MAX, INT_MIN, parse_int
from core.db import db, utcnow
from exchange.models import Item
from points import deeds
from points.models import Deed
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import running
from volunteer.models import Activity

HUGE = 10**20
# "²" and "٣" pass str.isdigit(); int() refuses the first and reads the second as 3. Full-width "１２"
# is 12 to int(). None of them is what a scanner or a keyboard sends for a code.
NOT_ASCII = ["²", "٣", "１２"]


@pytest.fixture
def w(app):
    return build_world()


def problem(response, status=422):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/problem+json"
    return response.get_json()


# The helper ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*NOT_ASCII, "", " ", "1e3", "0x10", "+5", "1_000", "12a", "9" * 19, None])
def test_only_ascii_digits_spell_a_number(text):
    with pytest.raises(ValueError):
        parse_int(text)


def test_a_number_must_lie_within_its_range():
    assert parse_int(" 42 ") == 42 and parse_int("-7") == -7
    assert parse_int(str(INT_MAX)) == INT_MAX and parse_int(str(INT_MIN)) == INT_MIN
    for text, low, high in [(str(INT_MAX + 1), INT_MIN, INT_MAX), ("0", 1, 10), ("11", 1, 10), ("-1", 0, 5)]:
        with pytest.raises(ValueError):
            parse_int(text, minimum=low, maximum=high)


def _loaded_integer_fields(schema, prefix=""):
    for name, field in schema.fields.items():
        if field.dump_only:
            continue
        if isinstance(field, fields.Nested):
            yield from _loaded_integer_fields(field.schema, f"{prefix}{name}.")
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            yield from _loaded_integer_fields(field.inner.schema, f"{prefix}{name}[].")
        elif isinstance(field, fields.Integer):
            yield f"{prefix}{name}", field


def test_every_integer_the_api_reads_has_a_range_its_column_can_hold(app):
    unbounded = []
    for route in routes_of(app):
        for schema in (route.body, route.query):
            if schema is None:
                continue
            for name, field in _loaded_integer_fields(schema()):
                ranges = [v for v in field.validators if isinstance(v, validate.Range)]
                if not any(
                    r.min is not None and r.max is not None and r.min >= INT_MIN and r.max <= INT_MAX for r in ranges
                ):
                    unbounded.append(f"{route.method} {route.rule} {schema.__name__}.{name}")
    assert unbounded == []


# Tokens and codes: ASCII digits only -----------------------------------------------------------


@pytest.mark.parametrize("digits", NOT_ASCII)
def test_a_venue_token_with_non_ascii_digits_is_an_invalid_token(app, client, w, digits):
    activity_id = running(w)
    for token in (f"A{digits}.1.XYZ", f"A{activity_id}.{digits}.XYZ", f"A{activity_id}.P.{digits}"):
        body = problem(client.post("/api/v1/checkins", json={"token": token}, headers=f.bearer(w.users["resident"])))
        assert body["code"] == "token_invalid"
        assert signed_in(app, w.users["resident"]).get("/scan", query_string={"t": token}).status_code == 422


@pytest.mark.parametrize("digits", NOT_ASCII)
def test_a_personal_code_with_non_ascii_digits_is_an_invalid_code(client, w, digits):
    store = w.stores["s1"].id
    clerk = f.bearer(w.users["clerk"])
    resident = w.users["resident"].id
    for code in (f"MC1.{digits}.1.XYZ", f"MC1.{resident}.{digits}.XYZ", f"MC1.{resident}.1.{digits}"):
        found = client.get(f"/api/v1/stores/{store}/residents", query_string={"code": code}, headers=clerk)
        assert problem(found)["code"] == "code_invalid"
        body = {"code": code, "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}
        redeemed = client.post(f"/api/v1/stores/{store}/redemptions", json=body, headers=clerk)
        assert problem(redeemed)["code"] == "code_invalid"
        scanned = client.post(
            f"/api/v1/activities/{running(w)}/scans", json={"code": code}, headers=f.bearer(w.users["organizer"])
        )
        assert problem(scanned)["code"] == "code_invalid"


def test_a_personal_code_naming_a_user_beyond_the_column_is_an_invalid_code(client, w):
    code = f"MC1.{HUGE}.1.XYZ"
    found = client.get(
        f"/api/v1/stores/{w.stores['s1'].id}/residents", query_string={"code": code}, headers=f.bearer(w.users["clerk"])
    )
    assert problem(found)["code"] == "code_invalid"


# API bodies: integers beyond the column --------------------------------------------------------


def test_numbers_beyond_the_columns_are_422s_naming_the_field(client, w):
    store, oil = w.stores["s1"].id, w.items["oil"].id
    organizer, clerk, admin = (f.bearer(w.users[n]) for n in ("organizer", "clerk", "admin"))
    activity = {
        "title": "巡逻",
        "category": "平安巡逻",
        "department_id": w.departments["d1"].id,
        "region_code": "43010101",
        "address": "村口",
        "starts_at": "2030-05-01T09:00:00+08:00",
        "ends_at": "2030-05-01T11:00:00+08:00",
    }
    item = {"name": "毛巾", "unit": "条", "points_price": 3}
    cases = [
        ("/api/v1/activities", {**activity, "capacity": HUGE}, organizer, "capacity"),
        ("/api/v1/activities", {**activity, "department_id": HUGE}, organizer, "department_id"),
        (f"/api/v1/stores/{store}/items", {**item, "points_price": HUGE}, clerk, "points_price"),
        (f"/api/v1/stores/{store}/items", {**item, "stock": HUGE}, clerk, "stock"),
        (f"/api/v1/stores/{store}/items", {**item, "monthly_limit": HUGE}, clerk, "monthly_limit"),
        (f"/api/v1/items/{oil}/stock", {"delta": HUGE, "reason": "purchase"}, clerk, "delta"),
        (f"/api/v1/items/{oil}/stock", {"delta": -HUGE, "reason": "purchase"}, clerk, "delta"),
        (f"/api/v1/items/{oil}/stock", {"counted": HUGE, "reason": "stocktake"}, clerk, "counted"),
        (
            f"/api/v1/stores/{store}/redemptions",
            {"resident_id": HUGE, "lines": [{"item_id": oil, "qty": 1}]},
            clerk,
            "resident_id",
        ),
        (
            f"/api/v1/stores/{store}/redemptions",
            {"resident_id": w.users["resident"].id, "lines": [{"item_id": HUGE, "qty": 1}]},
            clerk,
            "lines.0.item_id",
        ),
        (
            "/api/v1/deeds",
            {"resident_id": HUGE, "deed_type": "x", "description": "x", "occurred_on": "2026-01-01"},
            f.bearer(w.users["grid_worker"]),
            "resident_id",
        ),
        (f"/api/v1/residents/{w.users['resident'].id}/adjustments", {"points": HUGE, "reason": "x"}, admin, "points"),
        (
            "/api/v1/roles",
            {"user_id": HUGE, "role": "clerk", "scope_type": "store", "scope_id": store},
            admin,
            "user_id",
        ),
    ]
    for path, body, headers, field in cases:
        answer = problem(client.post(path, json=body, headers=headers))
        assert field in answer["errors"], (path, field, answer)
    assert problem(client.get("/api/v1/deed-types", query_string={"page": HUGE}))["errors"].keys() == {"page"}
    fresh()
    assert db.session.get(Item, oil).stock == 5
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Activity)) == 0


def test_a_role_scope_beyond_the_column_finds_nothing(client, w):
    body = {"user_id": w.users["target"].id, "role": "clerk", "scope_type": "store", "scope_id": str(HUGE)}
    answer = client.post("/api/v1/roles", json=body, headers=f.bearer(w.users["admin"]))
    assert 400 <= answer.status_code < 500 and answer.mimetype == "application/problem+json"


@pytest.mark.parametrize("ident", [str(HUGE), str(INT_MAX + 1), "１２"])
def test_an_id_in_a_url_beyond_the_column_or_not_ascii_matches_no_route(client, w, ident):
    # No route takes it: 404, or 405 where the same path with an id exists for another method.
    answer = client.get(f"/api/v1/activities/{ident}")
    assert answer.status_code in (404, 405) and answer.mimetype == "application/problem+json"
    assert client.get(f"/stores/{ident}/items/1/picture").status_code == 404


# Pages: a friendly message, what was typed kept, nothing changed ---------------------------------


def signed_in(app, who):
    client = app.test_client()
    sign_in_page(client, who)
    return client


@pytest.mark.parametrize("price", [str(HUGE), "²", "12a"])
def test_a_bad_number_on_the_goods_page_is_explained_and_the_form_kept(app, w, price):
    page = signed_in(app, w.users["clerk"])
    form = {"action": "add", "name": "洗衣粉", "unit": "袋", "points_price": price, "stock": "3"}
    answer = page.post(f"/stores/{w.stores['s1'].id}/goods", data={"csrf_token": csrf_token(page), **form})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "flash-error" in html
    assert 'value="洗衣粉"' in html and f'value="{price}"' in html
    fresh()
    assert db.session.scalar(sa.select(Item).where(Item.name == "洗衣粉")) is None


@pytest.mark.parametrize("field, value", [("delta", str(HUGE)), ("delta", "٣"), ("item_id", "²")])
def test_a_bad_number_when_receiving_stock_is_explained_and_changes_nothing(app, w, field, value):
    page = signed_in(app, w.users["clerk"])
    oil = w.items["oil"]
    form = {"item_id": str(oil.id), "reason": "purchase", "delta": "2", "donor": "老王", field: value}
    answer = page.post(f"/stores/{w.stores['s1'].id}/goods", data={"csrf_token": csrf_token(page), **form})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "flash-error" in html
    if field == "delta":
        assert f'value="{value}"' in html and 'value="老王"' in html
    fresh()
    assert db.session.get(Item, oil.id).stock == 5


@pytest.mark.parametrize("capacity", [str(HUGE), "²"])
def test_a_bad_capacity_on_the_activity_form_is_explained_and_the_form_kept(app, w, capacity):
    page = signed_in(app, w.users["organizer"])
    form = {
        "title": "敬老院打扫",
        "category": "助老助残",
        "department_id": str(w.departments["d1"].id),
        "address": "敬老院",
        "starts_at": "2030-05-01T09:00",
        "ends_at": "2030-05-01T11:00",
        "capacity": capacity,
    }
    answer = page.post("/organizer/activities/new", data={"csrf_token": csrf_token(page), **form})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "flash-error" in html and 'value="敬老院打扫"' in html
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Activity)) == 0


@pytest.mark.parametrize("resident", [str(HUGE), "²", "abc"])
def test_a_bad_resident_on_the_deed_form_is_explained_and_the_form_kept(app, w, resident):
    page = signed_in(app, w.users["grid_worker"])
    form = {"resident_id": resident, "deed_type": "haorenhaoshi", "description": "扶老人过马路"}
    answer = page.post("/deeds/new", data={"csrf_token": csrf_token(page), **form})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "flash-error" in html and "扶老人过马路</textarea>" in html
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


@pytest.mark.parametrize("deed_id", ["abc", "²", str(HUGE), ""])
def test_a_reviewer_post_with_a_bad_deed_id_gets_a_message_not_a_500(app, w, deed_id):
    resident = w.users["resident"]
    deed = deeds.record(
        actor=w.users["grid_worker"],
        resident_id=resident.id,
        deed_type="haorenhaoshi",
        description="捡到钱包交还失主",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )
    page = signed_in(app, w.users["reviewer"])
    answer = page.post("/deeds/review", data={"csrf_token": csrf_token(page), "action": "approve", "deed_id": deed_id})
    assert answer.status_code == 302
    shown = page.get(answer.headers["Location"])
    assert shown.status_code == 200 and "flash-error" in shown.get_data(as_text=True)
    fresh()
    assert db.session.get(Deed, deed.id).status == "pending"


@pytest.mark.parametrize("user_id", ["²", str(HUGE)])
def test_a_bad_user_on_the_roles_page_is_explained(app, w, user_id):
    page = signed_in(app, w.users["admin"])
    form = {"user_id": user_id, "role": "clerk", "scope_type": "store", "scope_id": str(w.stores["s1"].id)}
    answer = page.post("/admin/roles", data={"csrf_token": csrf_token(page), **form}, follow_redirects=True)
    assert answer.status_code == 200 and "flash-error" in answer.get_data(as_text=True)


def test_page_forms_tell_the_browser_the_same_bounds(app, w):
    html = signed_in(app, w.users["clerk"]).get(f"/stores/{w.stores['s1'].id}/goods").get_data(as_text=True)
    assert f'max="{bounds.POINTS_MAX}"' in html and f'max="{bounds.STOCK_MAX}"' in html


# Numbers that are not integers but must be ASCII digits too -------------------------------------

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def id_number(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


@pytest.mark.parametrize(
    "field, value",
    [
        # Only the digits a pattern or a check does not pin down: what slipped through before.
        ("phone", "13" + "912345678".translate(FULL_WIDTH)),
        ("id_number", "43092219900101123".translate(FULL_WIDTH) + id_number("43092219900101123")[-1]),
    ],
    ids=["full_width_phone", "full_width_id_number"],
)
def test_a_phone_or_id_number_in_other_digits_is_refused_not_a_second_spelling(client, w, field, value):
    body = {"phone": "13912345670", "name": "张三", "password": "Abcd1234", "region_code": "43010101", field: value}
    answer = problem(client.post("/api/v1/auth/register", json=body))
    assert field in answer["errors"]


def test_a_phone_tail_in_other_digits_is_a_422(client, w):
    answer = client.get(
        f"/api/v1/stores/{w.stores['s1'].id}/residents",
        query_string={"name": "张小明", "phone_tail": "５６７８"},
        headers=f.bearer(w.users["clerk"]),
    )
    assert "phone_tail" in problem(answer)["errors"]


@pytest.mark.parametrize("action", ["annul", "confirm", "approve"])
def test_an_organizer_form_naming_a_volunteer_beyond_the_column_gets_a_message(app, w, action):
    page = signed_in(app, w.users["organizer"])
    form = {"action": action, "user_id": str(HUGE), "signup_id": str(HUGE), "reason": "签错了"}
    answer = page.post(f"/organizer/activities/{running(w)}", data={"csrf_token": csrf_token(page), **form})
    assert answer.status_code == 302
    assert "flash-error" in page.get(answer.headers["Location"]).get_data(as_text=True)
