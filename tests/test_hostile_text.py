"""HTML and SQL in every text field: stored exactly as given, read back equal through the API, and
shown escaped on the pages that show it (the text is there, no tag or event handler of it is).

The free-text fields of each create and update route are read from the OpenAPI document, so a
field added to one of these schemas is attacked without changing this test; identifiers (codes,
phones, passwords, tokens) are not free text and are validated elsewhere.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import pytest

from tests import factories as f
from tests.authz import build_world, sign_in_page
from tests.markup import inline_code

ATTACKS = (
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    '" onmouseover=x "',
    "<img src=x onerror=alert(1)>",
    "</textarea><b>粗</b>&amp;",
)
IDENTIFIERS = {"code", "region_code", "parent_code", "deed_type", "token", "password", "phone", "id_number", "otp"}
_serial = itertools.count(1)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in {"value", "title", "alt", "placeholder"} and value:
                self.chunks.append(value)

    def handle_data(self, data):
        self.chunks.append(data)


def _read(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser


@dataclass
class Route:
    """A create or update route: who sends it, a valid body, and the pages that show each field."""

    operation: str  # "METHOD /api/v1/path" as in the OpenAPI document, path parameters named
    actor: str
    path: Callable[[Any], str]
    body: Callable[[Any, int], dict]
    pages: dict[str, tuple[str, Callable[[Any, dict], str]]]  # field → (viewer, page URL)
    idempotent: bool = False


def _activity(w, n: int) -> dict:
    return {
        "title": f"河道清理{n}",
        "description": "带好手套",
        "category": "环境整治",
        "department_id": w.departments["d1"].id,
        "region_code": "43010101",
        "address": "花果山村河边",
        "starts_at": "2030-01-01T09:00:00+08:00",
        "ends_at": "2030-01-01T11:00:00+08:00",
    }


def _draft(w) -> int:
    from tests.volunteer_helpers import draft

    return draft(w)


def _approved_deed(w) -> int:
    """A new deed in its notice period, so that each attack objects to one of its own."""
    from core.db import utcnow
    from points import deeds

    deed = deeds.record(
        actor=w.users["grid_worker"],
        resident_id=w.users["resident"].id,
        deed_type="lingliting",
        description="修路灯",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )
    return deeds.approve(actor=w.users["reviewer"], deed_id=deed.id, now=utcnow()).id


def _organizer_page(w, made):
    return f"/organizer/activities/{made['id']}"


def _edit_page(w, made):
    return f"/organizer/activities/{made['id']}/edit"


ROUTES = [
    Route(
        "POST /api/v1/activities",
        "organizer",
        lambda w: "/api/v1/activities",
        _activity,
        {
            "title": ("organizer", _organizer_page),
            "address": ("organizer", _organizer_page),
            "description": ("organizer", _edit_page),
        },
    ),
    Route(
        "PATCH /api/v1/activities/{activity_id}",
        "organizer",
        lambda w: f"/api/v1/activities/{_draft(w)}",
        lambda w, n: {},
        {
            "title": ("organizer", _edit_page),
            "address": ("organizer", _edit_page),
            "description": ("organizer", _edit_page),
        },
    ),
    Route(
        "POST /api/v1/departments",
        "admin",
        lambda w: "/api/v1/departments",
        lambda w, n: {"name": f"司法所{n}", "region_code": "430101"},
        {"name": ("admin", lambda w, made: "/admin/departments")},
    ),
    Route(
        "POST /api/v1/regions",
        "admin",
        lambda w: "/api/v1/regions",
        lambda w, n: {"code": f"4301{n + 10:02d}", "name": f"新镇{n}", "level": "township", "parent_code": "4301"},
        {"name": ("admin", lambda w, made: "/admin/?per_page=100")},
    ),
    Route(
        "POST /api/v1/stores",
        "admin",
        lambda w: "/api/v1/stores",
        lambda w, n: {"name": f"超市{n}", "region_code": "43010101", "opening_hours": "周六 9:00–12:00"},
        {
            "name": ("admin", lambda w, made: "/stores/"),
        },
    ),
    Route(
        "POST /api/v1/stores/{store_id}/items",
        "clerk",
        lambda w: f"/api/v1/stores/{w.stores['s1'].id}/items",
        lambda w, n: {"name": f"毛巾{n}", "unit": "条", "points_price": 3, "stock": 5, "category": "日用品"},
        {
            field: ("clerk", lambda w, made: f"/stores/{w.stores['s1'].id}/goods")
            for field in ("name", "unit")  # the category is not shown on a page
        },
    ),
    Route(
        "POST /api/v1/deeds",
        "grid_worker",
        lambda w: "/api/v1/deeds",
        lambda w, n: {
            "resident_id": w.users["resident"].id,
            "deed_type": "haorenhaoshi",
            "description": "扶老人",
            "occurred_on": "2026-01-05",
        },
        {"description": ("reviewer", lambda w, made: "/deeds/review")},
    ),
    Route(
        "POST /api/v1/deed-types",
        "admin",
        lambda w: "/api/v1/deed-types",
        lambda w, n: {"code": f"xiaoshi{n}", "name": f"小事{n}", "points": 2, "region_code": "4301"},
        {"name": ("admin", lambda w, made: "/admin/deed-types?region=4301")},
    ),
    Route(
        "POST /api/v1/residents/{resident_id}/adjustments",
        "admin",
        lambda w: f"/api/v1/residents/{w.users['resident'].id}/adjustments",
        lambda w, n: {"points": 1, "reason": "表彰"},
        {"reason": ("admin", lambda w, made: f"/admin/residents/{w.users['resident'].id}")},
        idempotent=True,
    ),
    Route(
        "POST /api/v1/items/{item_id}/stock",
        "clerk",
        lambda w: f"/api/v1/items/{w.items['oil'].id}/stock",
        lambda w, n: {"delta": 1, "reason": "donation", "donor": "王大爷", "note": "新年捐赠"},
        {"donor": ("clerk", lambda w, made: f"/stores/{w.stores['s1'].id}/goods")},  # the note is not shown
        idempotent=True,
    ),
    Route(
        "POST /api/v1/deeds/{deed_id}/objections",
        "target",
        lambda w: f"/api/v1/deeds/{_approved_deed(w)}/objections",
        lambda w, n: {"reason": "情况不属实"},
        {"reason": ("reviewer", lambda w, made: "/deeds/review")},
    ),
    Route(
        "POST /api/v1/auth/register",
        "anonymous",
        lambda w: "/api/v1/auth/register",
        lambda w, n: {"phone": f.next_phone(), "name": "张三", "password": f.PASSWORD, "region_code": "4301010101"},
        {"name": ("admin", lambda w, made: f"/admin/users?q={made['_phone']}")},
    ),
]


def _free_text_fields(document: dict, operation: str) -> dict[str, int]:
    method, path = operation.split(" ", 1)
    body = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return {
        name: spec.get("maxLength", 10_000)
        for name, spec in body["properties"].items()
        if spec.get("type") == "string"
        and not ({"format", "enum", "pattern"} & spec.keys())
        and name not in IDENTIFIERS
    }


def _value(attack: str, limit: int) -> str:
    """The attack, numbered, cut to the field's length (services trim surrounding spaces: none here)."""
    return f"{attack}{next(_serial)}"[:limit].strip()


@pytest.mark.parametrize("route", ROUTES, ids=[r.operation for r in ROUTES])
def test_html_and_sql_are_stored_as_given_and_shown_escaped(app, route):
    w = build_world()
    client = app.test_client()
    fields = _free_text_fields(client.get("/api/openapi.json").get_json(), route.operation)
    assert fields, f"{route.operation} has no free text in its schema"
    assert set(route.pages) <= set(fields), "the pages listed name fields the schema does not have"
    for field, limit in sorted(fields.items()):
        for attack in ATTACKS:
            n = next(_serial)
            value = _value(attack, limit)
            body = {**route.body(w, n), field: value}
            headers = f.bearer(w.users[route.actor]) if route.actor in w.users else {}
            if route.idempotent:
                headers["Idempotency-Key"] = f"hostile-{n}"
            method = route.operation.split(" ", 1)[0]
            response = client.open(route.path(w), method=method, json=body, headers=headers)
            assert response.status_code in (200, 201, 202), (route.operation, field, response.get_json())
            made = response.get_json()
            if field in made:  # the API gives back exactly what it was given
                assert made[field] == value, (route.operation, field)
            if field not in route.pages:
                continue
            viewer, url = route.pages[field]
            page = app.test_client()
            sign_in_page(page, w.users[viewer])
            html = page.get(url(w, {**made, "_phone": body.get("phone")})).get_data(as_text=True)
            _assert_escaped(
                html, value, f"{route.operation} {field} on {url(w, {**made, '_phone': body.get('phone')})}"
            )


def _assert_escaped(html: str, value: str, where: str) -> None:
    read = _read(html)
    assert any(value in chunk for chunk in read.chunks), f"{where}: the text is not shown"
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>粗</b>" not in html, where
    assert not inline_code(html), f"{where}: {inline_code(html)}"
    for tag, attrs in read.tags:
        assert tag not in {"img", "b"} or attrs.get("src") != "x", where
        assert "onmouseover" not in attrs and "onerror" not in attrs, where


def test_every_create_and_update_route_with_free_text_is_attacked_or_has_a_reason(client):
    """A new route with free text must join ROUTES above (or be named here with why it is not)."""
    not_here = {
        # Texts that reach a page only through a longer flow than one request: each is a reason,
        # a note or a name in a log; the same schema rule (text stored as given) and the same
        # autoescaping templates apply.
        "PUT /api/v1/activities/{activity_id}/attendances/{user_id}",
        "POST /api/v1/activities/{activity_id}/attendances/{user_id}/annul",
        "POST /api/v1/activities/{activity_id}/attendances/{user_id}/approve",
        "POST /api/v1/activities/{activity_id}/attendances/{user_id}/reject",
        "POST /api/v1/adjustments/{adjustment_id}/approve",
        "POST /api/v1/adjustments/{adjustment_id}/reject",
        "POST /api/v1/deeds/{deed_id}/approve",
        "POST /api/v1/deeds/{deed_id}/reject",
        "POST /api/v1/deeds/{deed_id}/void",
        "POST /api/v1/deeds/{deed_id}/objections/{objection_id}/resolve",
        "POST /api/v1/redemptions/{redemption_id}/void",
        "PATCH /api/v1/deed-types/{code}",
    }
    document = client.get("/api/openapi.json").get_json()
    covered = {r.operation for r in ROUTES}
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            content = operation.get("requestBody", {}).get("content", {})
            text = "application/json" in content and _free_text_fields(document, label)
            if text and label not in covered | not_here:
                missing.append(label)
    assert not missing, missing
