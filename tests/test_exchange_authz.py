"""Every moral-supermarket route against every kind of caller: a clerk of one store can do
nothing at another; admins act only within their region."""

from __future__ import annotations

import io

import pytest

from community import accounts
from core.db import utcnow
from exchange import redemption, stores
from tests import factories as f
from tests.authz import Case, World, check_matrix


def s1(w: World) -> int:
    return w.stores["s1"].id


def funded(w: World) -> int:
    if "funded" not in w.extra:
        f.fund(w.users["resident"], 100)
        w.extra["funded"] = True
    return w.users["resident"].id


def pictured(w: World) -> int:
    if "pictured" not in w.extra:
        stores.set_picture(actor=w.users["clerk"], item_id=w.items["oil"].id, picture=f.picture(), now=utcnow())
        w.extra["pictured"] = w.items["oil"].id
    return w.extra["pictured"]


def a_redemption(w: World) -> int:
    funded(w)
    if "redemption" not in w.extra:
        w.extra["redemption"] = redemption.redeem(
            actor=w.users["clerk"],
            store_id=s1(w),
            lines=[redemption.Line(w.items["oil"].id, 1)],
            key="setup",
            resident_id=w.users["resident"].id,
            now=utcnow(),
        ).id
    return w.extra["redemption"]


def void_body(w: World) -> dict:
    """A void as the counter sends it: the reason and the resident's personal code again."""
    return {"reason": "扫错了", "code": accounts.personal_code(w.users["resident"], utcnow())[0]}


STAFF_OF_S1 = {"clerk": 200, "admin": 200, "clerk_elsewhere": 404, "admin_elsewhere": 404}
PAGE_STAFF = {**STAFF_OF_S1, "anonymous": 302}
CLERK_ONLY = {"clerk": 200, "clerk_elsewhere": 403, "anonymous": 401}

CASES = [
    Case("list stores", "GET", "/api/v1/stores", 200),
    Case(
        "create store",
        "POST",
        "/api/v1/stores",
        403,
        {"admin": 201, "anonymous": 401},
        body={"name": "桃花村道德超市", "region_code": "43010101"},
    ),
    Case("list items", "GET", lambda w: f"/api/v1/stores/{s1(w)}/items", 200),
    Case(
        "add item",
        "POST",
        lambda w: f"/api/v1/stores/{s1(w)}/items",
        403,
        {"clerk": 201, "admin": 201, "clerk_elsewhere": 404, "admin_elsewhere": 404, "anonymous": 401},
        body={"name": "毛巾", "unit": "条", "points_price": 10, "stock": 3},
    ),
    Case(
        "stock in",
        "POST",
        lambda w: f"/api/v1/items/{w.items['oil'].id}/stock",
        403,
        {**STAFF_OF_S1, "anonymous": 401},
        body={"delta": 5, "reason": "purchase"},
    ),
    Case(
        "find resident",
        "GET",
        lambda w: f"/api/v1/stores/{s1(w)}/residents?name=张小明&phone_tail={w.users['resident'].phone[-4:]}",
        403,
        CLERK_ONLY,
    ),
    Case(
        "redeem",
        "POST",
        lambda w: f"/api/v1/stores/{s1(w)}/redemptions",
        403,
        {"clerk": 201, "clerk_elsewhere": 403, "anonymous": 401},
        body=lambda w: {"resident_id": funded(w), "lines": [{"item_id": w.items["oil"].id, "qty": 1}]},
    ),
    Case(
        "void",
        "POST",
        lambda w: f"/api/v1/redemptions/{a_redemption(w)}/void",
        403,
        {**STAFF_OF_S1, "anonymous": 401},
        body=void_body,
    ),
    Case(
        "list redemptions",
        "GET",
        lambda w: f"/api/v1/stores/{s1(w)}/redemptions",
        403,
        {**STAFF_OF_S1, "anonymous": 401},
    ),
    # Pages
    Case(
        "stores page",
        "GET",
        "/stores/",
        403,
        {"clerk": 200, "clerk_elsewhere": 200, "admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "create store form",
        "POST",
        "/stores/",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"name": "新超市", "region_code": "43010101"},
    ),
    Case(
        "grant clerk form",
        "POST",
        lambda w: f"/stores/{s1(w)}/clerks",
        403,
        {"admin": 302, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
        body=lambda w: {"phone": w.users["target"].phone},
    ),
    Case(
        "counter page",
        "GET",
        lambda w: f"/stores/{s1(w)}/counter",
        403,
        {"clerk": 200, "clerk_elsewhere": 404, "anonymous": 302},
        page=True,
    ),
    Case("receipt page", "GET", lambda w: f"/stores/{s1(w)}/receipts/{a_redemption(w)}", 403, PAGE_STAFF, page=True),
    Case("goods page", "GET", lambda w: f"/stores/{s1(w)}/goods", 403, PAGE_STAFF, page=True),
    Case(
        "goods form",
        "POST",
        lambda w: f"/stores/{s1(w)}/goods",
        403,
        {"clerk": 302, "admin": 302, "clerk_elsewhere": 404, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
        body=lambda w: {"item_id": str(w.items["oil"].id), "reason": "purchase", "delta": "2"},
    ),
    Case(
        "goods picture form",
        "POST",
        lambda w: f"/stores/{s1(w)}/goods",
        403,
        {"clerk": 302, "admin": 302, "clerk_elsewhere": 404, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
        body=lambda w: {
            "item_id": str(w.items["oil"].id),
            "action": "picture",
            "picture": (io.BytesIO(f.picture()), "oil.png"),
        },
    ),
    Case("item picture", "GET", lambda w: f"/stores/{s1(w)}/items/{pictured(w)}/picture", 200, page=True),
    Case("report page", "GET", lambda w: f"/stores/{s1(w)}/report", 403, PAGE_STAFF, page=True),
    Case(
        "void form",
        "POST",
        lambda w: f"/stores/{s1(w)}/redemptions/{a_redemption(w)}/void",
        403,
        {"clerk": 302, "admin": 302, "clerk_elsewhere": 404, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
        body=void_body,
    ),
    Case("inbox page", "GET", "/my/inbox", 200, {"anonymous": 302}, page=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)
