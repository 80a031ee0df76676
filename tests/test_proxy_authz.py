"""Acting for residents and residents' rights against every kind of caller: a proxy sign-up only by
an organizer of the activity or the resident's grid worker; a card only by an admin of the
resident's region or their grid worker; a resident's export and closure only for themselves."""

from __future__ import annotations

import pytest

from community import accounts
from core.db import utcnow
from tests import factories as f
from tests.authz import Case, World, check_matrix
from tests.volunteer_helpers import upcoming

SIGNED_IN = {"anonymous": 401}
PAGE_SIGNED_IN = {"anonymous": 302}
# Every caller closes their own account: residents may; staff are refused until their roles go.
STAFF = ("organizer", "grid_worker", "reviewer", "admin", "admin_elsewhere", "clerk", "clerk_elsewhere")
CLOSE_API = {"resident": 200, "anonymous": 401} | dict.fromkeys(STAFF, 409)
CLOSE_PAGE = {"resident": 302, "anonymous": 302} | dict.fromkeys(STAFF, 409)
CARD_PAGE = {"admin": 200, "grid_worker": 200, "admin_elsewhere": 404, "anonymous": 302}


def with_card(w: World) -> None:
    if "card" not in w.extra:
        w.extra["card"] = accounts.issue_card(actor=w.users["admin"], user_id=w.users["target"].id, now=utcnow())


CASES = [
    Case(
        "proxy sign-up",
        "POST",
        lambda w: f"/api/v1/activities/{upcoming(w)}/signups",
        403,
        {"organizer": 201, "grid_worker": 201, "anonymous": 401},
        body=lambda w: {"user_id": w.users["target"].id},
    ),
    Case(
        "proxy sign-up out of reach",
        "POST",
        lambda w: f"/api/v1/activities/{upcoming(w)}/signups",
        403,
        {"organizer": 404, "grid_worker": 404, "anonymous": 401},
        body=lambda w: {"user_id": w.users["stranger"].id},
    ),
    Case("my export", "GET", "/api/v1/me/export", 200, SIGNED_IN),
    Case("close my account", "POST", "/api/v1/me/close", 200, CLOSE_API, body={"password": f.PASSWORD}),
    Case(
        "proxy sign-up page",
        "GET",
        lambda w: f"/activities/{upcoming(w)}/proxy?q=李四",
        403,
        {"organizer": 200, "grid_worker": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "proxy sign-up form",
        "POST",
        lambda w: f"/activities/{upcoming(w)}/proxy",
        403,
        {"organizer": 302, "grid_worker": 302, "anonymous": 302},
        page=True,
        body=lambda w: {"user_id": w.users["target"].id, "q": "李四"},
    ),
    Case("my data page", "GET", "/my/data", 200, PAGE_SIGNED_IN, page=True),
    Case("my data xlsx", "GET", "/my/data.xlsx", 200, PAGE_SIGNED_IN, page=True),
    Case("close account page", "GET", "/my/close", 200, PAGE_SIGNED_IN, page=True),
    Case(
        "close account form",
        "POST",
        "/my/close",
        302,
        CLOSE_PAGE,
        page=True,
        body={"understood": "1", "password": f.PASSWORD},
    ),
    Case("card page", "GET", lambda w: f"/admin/users/{w.users['target'].id}/card", 403, CARD_PAGE, page=True),
    Case(
        "card issue form",
        "POST",
        lambda w: f"/admin/users/{w.users['target'].id}/card",
        403,
        {"admin": 302, "grid_worker": 302, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
    ),
    Case(
        "card image",
        "GET",
        lambda w: f"/admin/users/{w.users['target'].id}/card.png",
        403,
        CARD_PAGE,
        page=True,
        setup=with_card,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)
