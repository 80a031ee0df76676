"""A walk over the whole URL map: one seeded county, a caller of every role in scope and out of it,
and each rule's arguments filled with real ids of objects in scope (the resident's, department 1's,
store 1's, grid 1's, township 1's, the county's).

`build_walk_world` extends the matrix's world (tests/authz.py) with the callers out of scope;
`request_for` turns a rule into a concrete path and body (the matrix case's query and body for
that route, `matrix_cases`); `Caller` sends a request the way its kind of client does (a bearer
token for the API, a signed-in session with a CSRF token for pages) and `reached` says whether the
request got through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.routing import Rule

from community import accounts, services
from community.models import RoleGrant
from core import pages
from core.db import db, utcnow
from points import deeds
from tests import factories as f
from tests.authz import World, _value, build_world, csrf_token, sign_in_page
from tests.test_exchange_authz import a_redemption, pictured
from tests.test_points_authz import approved_deed, certificate_code, objection, pending_adjustment, photo_deed
from tests.test_stats_authz import county_report
from tests.volunteer_helpers import running
from volunteer import attendance, signups

# The callers, by the world's user they sign in as (None: anonymous). The objects in URLs are the
# resident's, department 1's (城关派出所, 桃花江镇), store 1's, grid 1's, township 1's, county 4301's.
CALLERS: dict[str, str | None] = {
    "anonymous": None,
    "resident": "resident",  # the person whose data the URLs name
    "neighbour": "target",  # another resident of the same grid
    "organizer": "organizer",  # of department 1, which runs the activity
    "organizer_elsewhere": "organizer_elsewhere",  # of department 2
    "clerk": "clerk",  # of store 1
    "clerk_elsewhere": "clerk_elsewhere",  # of store 2
    "grid_worker": "grid_worker",  # of the resident's grid
    "grid_worker_elsewhere": "grid_worker_elsewhere",  # of a grid in the other township
    "reviewer": "reviewer",  # of township 1
    "reviewer_elsewhere": "reviewer_elsewhere",  # of township 2
    "admin": "admin",  # of the county
    "admin_other_county": "admin_other_county",  # of another county of the city
    "city_admin": "city_admin",  # of the city above the county
}

IGNORED_ENDPOINTS = {"static"}


def build_walk_world() -> World:
    """The matrix's world, the callers out of scope, and one object of every kind in scope."""
    w = build_world()
    f.region("4302", "安化县", "county", "4300")
    w.users["organizer_elsewhere"] = f.grant(
        f.user("430102", name="冯组织"), "organizer", "department", w.departments["d2"].id
    )
    w.users["grid_worker_elsewhere"] = f.grant(f.user("43010201", name="陈网格"), "grid_worker", "region", "4301020101")
    w.users["reviewer_elsewhere"] = f.grant(f.user("430102", name="褚审核"), "reviewer", "region", "430102")
    w.users["admin_other_county"] = f.grant(f.user("4302", name="卫管理"), "admin", "region", "4302")
    w.users["city_admin"] = f.grant(f.user("4300", name="蒋管理"), "admin", "region", "4300")
    w.users["spare"] = f.user("4301010101", name="沈备用")
    resident = w.users["resident"]
    # The activity runs now; the resident signed up and waits for a make-up's review.
    activity_id = running(w)
    w.extra["signup"] = signups.sign_up(user=resident, activity_id=activity_id, now=utcnow()).id
    start = utcnow().replace(microsecond=0) - timedelta(minutes=20)
    attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity_id,
        user_id=resident.id,
        checked_in_at=start,
        checked_out_at=start + timedelta(minutes=15),
        reason="忘记扫码",
        now=utcnow(),
    )
    for make in (approved_deed, objection, photo_deed, pending_adjustment, certificate_code):
        make(w)
    on_notice = deeds.record(
        actor=w.users["grid_worker"],
        resident_id=resident.id,
        deed_type="haorenhaoshi",
        description="调解邻里纠纷",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )
    w.extra["on_notice"] = deeds.approve(actor=w.users["reviewer"], deed_id=on_notice.id, now=utcnow()).id
    for make in (a_redemption, pictured, county_report):
        make(w)
    accounts.issue_card(actor=w.users["admin"], user_id=resident.id, now=utcnow())
    return w


def a_grant(w: World) -> int:
    """A grant of the spare person's, made again whenever a caller revoked the last one."""
    grant_id = w.extra.get("grant")
    if grant_id is None or db.session.get(RoleGrant, grant_id) is None:
        w.extra["grant"] = services.grant_role(
            actor=None,
            user_id=w.users["spare"].id,
            role="organizer",
            scope_type="department",
            scope_id=w.departments["d1"].id,
            now=utcnow(),
        ).id
    return w.extra["grant"]


# What fills a rule's argument, by name; by endpoint where one name means different things.
ARGUMENTS: dict[str, Callable[[World], Any]] = {
    "activity_id": running,
    "user_id": lambda w: w.users["resident"].id,
    "resident_id": lambda w: w.users["resident"].id,
    "signup_id": lambda w: w.extra["signup"],
    "deed_id": lambda w: objection(w)[0],
    "objection_id": lambda w: objection(w)[1],
    "adjustment_id": pending_adjustment,
    "store_id": lambda w: w.stores["s1"].id,
    "item_id": pictured,
    "redemption_id": a_redemption,
    "report_id": county_report,
    "grant_id": a_grant,
    "region_code": lambda w: "430101",
    "code": certificate_code,
}
BY_ENDPOINT: dict[str, dict[str, Callable[[World], Any]]] = {
    "api.community_get_region": {"code": lambda w: "430101"},
    "api.community_region_security": {"code": lambda w: "430101"},
    "api.community_set_region_security": {"code": lambda w: "430101"},
    "api.points_change_deed_type": {"code": lambda w: "haorenhaoshi"},
    "points.deed_photo": {"deed_id": photo_deed},
    "points.object_to": {"deed_id": lambda w: w.extra["on_notice"]},  # the walk voids the other one
}
# Query strings that name an object in scope (without one, a reader sees their own region); the
# other queries and the bodies come from the matrix's case for the same route (`matrix_cases`).
QUERIES: dict[str, str] = {
    "api.community_list_users": "region_code=430101",
    "user_pages.admin_users": "region=430101",
    "points_settings.deed_types": "region=4301",
    "points_settings.point_rules": "region=430101",
}


def _spare_grant(w: World) -> dict:
    spare = {"user_id": w.users["spare"].id, "role": "grid_worker", "scope_type": "region"}
    return {**spare, "scope_id": "4301010101"}


# Where the matrix's body would change the callers themselves: close their accounts, change their
# passwords, deactivate the resident, give the neighbour a role. None: no body at all.
BODIES: dict[str, Callable[[World], Any] | None] = {
    "api.community_close_account": None,
    "community.close_account": None,
    "community.change_password": None,
    "api.community_use_password_reset": None,
    "user_pages.password_reset": None,
    "api.community_change_user": lambda w: {"active": True},
    "user_pages.admin_set_active": lambda w: {"active": "1"},
    "api.community_grant_role": _spare_grant,
    "community.admin_roles": _spare_grant,
    "exchange.grant_clerk": lambda w: {"phone": w.users["spare"].phone},
    "volunteer.makeups": lambda w: {"action": "approve", "activity_id": running(w), "user_id": w.users["resident"].id},
}
# Which matrix case stands for a route that several cases call with different bodies.
PREFERRED_CASES = {("api.volunteer_sign_up", "POST"): "sign up"}


@dataclass
class Request:
    """How the walk calls one (rule, method): the matrix case's query and body, or the overrides."""

    query: str = ""
    body: Callable[[World], Any] | None = None
    multipart: bool = False


_requests: dict[tuple[str, str], Request] = {}


def matrix_cases(app: Flask) -> dict[tuple[str, str], Request]:
    """(endpoint, method) → the query and body of the matrix's case for it. Resolving the cases'
    paths needs their world: built on the current database, which the caller resets after."""
    if _requests:
        return _requests
    from tests.test_authz_coverage import all_cases

    w = build_world()
    adapter = app.url_map.bind("localhost")
    for case in all_cases():
        path = _value(case.path, w)
        endpoint, _ = adapter.match(path.split("?")[0], method=case.method)
        key = (endpoint, case.method)
        if key in _requests and PREFERRED_CASES.get(key) != case.name:
            continue
        body = case.body if callable(case.body) or case.body is None else (lambda w, b=case.body: b)
        _requests[key] = Request(path.partition("?")[2], body, case.multipart)
    return _requests


def request_for(rule: Rule, method: str, w: World) -> tuple[str, Any, bool]:
    """The path with ids and query filled in, the body, and whether it goes as a multipart form."""
    values = {}
    for name in rule.arguments:
        maker = BY_ENDPOINT.get(rule.endpoint, {}).get(name) or ARGUMENTS.get(name)
        assert maker, f"{rule.endpoint}: no id for <{name}>; add one to ARGUMENTS in tests/walk.py"
        values[name] = maker(w)
    _, path = rule.build(values, append_unknown=False)
    known = _requests.get((rule.endpoint, method), Request())
    query = QUERIES.get(rule.endpoint, known.query)
    maker = BODIES.get(rule.endpoint, known.body)
    return (f"{path}?{query}" if query else path), (maker(w) if maker else None), known.multipart


def is_page(path: str) -> bool:
    return not path.startswith("/api/")


# The statuses `core.pages.refusals()` ended with during the last request: a page form refused
# out of scope redirects with a flash, and the refusal's status says it was a 403 or 404 all the same.
REFUSED: list[int] = []


class _WatchedRefusal(pages.Refusal):
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "status" and value != 200:
            REFUSED.append(value)
        super().__setattr__(name, value)


@contextmanager
def watching_refusals() -> Iterator[None]:
    original, pages.Refusal = pages.Refusal, _WatchedRefusal
    try:
        yield
    finally:
        pages.Refusal = original


@dataclass
class Caller:
    """One kind of caller with a browser of their own and a bearer token, both made once."""

    name: str
    app: Flask
    user: Any
    client: Any = None
    token: dict[str, str] = field(default_factory=dict)
    csrf: tuple[str, str] | None = None  # (the session's raw value, the form's signed token)
    signed_in: bool = False

    def __post_init__(self) -> None:
        self.client = self.app.test_client()
        if self.user is not None:
            self.token = f.bearer(self.user)

    def _session(self) -> None:
        """Sign the browser in again after any form (a walked /logout or /login changes the session),
        keeping the same CSRF secret."""
        if self.csrf is None:
            if self.user is not None:
                sign_in_page(self.client, self.user)
            signed = csrf_token(self.client)
            with self.client.session_transaction() as session:
                self.csrf = (session["csrf_token"], signed)
        elif not self.signed_in:
            with self.client.session_transaction() as session:
                session.clear()
                session["csrf_token"] = self.csrf[0]
                if self.user is not None:
                    session["_user_id"], session["_fresh"] = self.user.get_id(), True
        self.signed_in = True

    def send(self, method: str, path: str, body: Any = None, multipart: bool = False):
        REFUSED.clear()
        if is_page(path):
            self._session()
            if method == "GET":
                return self.client.open(path, method=method)
            self.signed_in = False
            return self.client.open(path, method=method, data={**(body or {}), "csrf_token": self.csrf[1]})
        if multipart:
            return self.client.open(path, method=method, data=body, headers=self.token)
        return self.client.open(path, method=method, json=body, headers=self.token)

    def get(self, path: str):
        return self.send("GET", path)


def reached(path: str, response) -> bool:
    """Access is anything but 401, 403 or 404; for a page, anything but a demand to sign in (a
    redirect to /login?next=…) or a form refused with one of those statuses."""
    if response.status_code in (401, 403, 404):
        return False
    if is_page(path) and response.status_code in (301, 302, 303, 307):
        target = urlsplit(response.headers.get("Location", ""))
        if target.path.endswith("/login") and "next=" in target.query:
            return False
        return not any(status in (401, 403, 404) for status in REFUSED)
    return True


def walkable_rules(app: Flask) -> list[tuple[Rule, str]]:
    """(rule, method) pairs: every method of every rule but HEAD and OPTIONS, static excluded;
    reads first, so that what a walked write changes comes after every read."""
    pairs = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in IGNORED_ENDPOINTS
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return sorted(pairs, key=lambda p: (p[1] != "GET", p[0].rule, p[1]))


def callers(app: Flask, w: World) -> dict[str, Caller]:
    return {name: Caller(name, app, w.users.get(key) if key else None) for name, key in CALLERS.items()}
