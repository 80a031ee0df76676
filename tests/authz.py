"""The authorization matrix: every route × every kind of caller → the status the contract expects.

A `World` holds one small county with a caller of each role, some in scope and one admin of a
sibling township (out of scope). Each domain's test module lists its `Case`s; `check()` sends the
request as the given actor (bearer token for the API, a signed-in session for pages) and asserts
the status. `test_authz_coverage` makes sure no API route or page is left without a case.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from community.models import Department, Region, User
from core.db import utcnow
from exchange import stores
from tests import factories as f

ACTORS = (
    "anonymous",
    "resident",
    "organizer",
    "grid_worker",
    "reviewer",
    "admin",
    "admin_elsewhere",
    "clerk",
    "clerk_elsewhere",
)


@dataclass
class World:
    regions: dict[str, Region] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    stores: dict[str, Any] = field(default_factory=dict)
    items: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def build_world() -> World:
    w = World()
    w.regions["city"] = f.region("4300", "益阳市", "city")
    w.regions["county"] = f.region("4301", "桃江县", "county", "4300")
    w.regions["t1"] = f.region("430101", "桃花江镇", "township", "4301")
    w.regions["t2"] = f.region("430102", "武潭镇", "township", "4301")
    w.regions["v1"] = f.region("43010101", "花果山村", "village", "430101")
    w.regions["v2"] = f.region("43010201", "大栗港村", "village", "430102")
    w.regions["g1"] = f.region("4301010101", "花果山村第一网格", "grid", "43010101")
    w.regions["g2"] = f.region("4301020101", "大栗港村第一网格", "grid", "43010201")
    w.departments["d1"] = f.department("城关派出所", "430101")
    w.departments["d2"] = f.department("武潭镇司法所", "430102")
    w.users["resident"] = f.user("4301010101", name="张小明")
    w.users["target"] = f.user("4301010101", name="李四")
    w.users["stranger"] = f.user("4301020101", name="王五")
    w.users["organizer"] = f.grant(f.user("430101", name="赵组织"), "organizer", "department", w.departments["d1"].id)
    w.users["grid_worker"] = f.grant(f.user("43010101", name="钱网格"), "grid_worker", "region", "4301010101")
    w.users["reviewer"] = f.grant(f.user("430101", name="孙审核"), "reviewer", "region", "430101")
    w.users["admin"] = f.grant(f.user("4301", name="周管理"), "admin", "region", "4301")
    w.users["admin_elsewhere"] = f.grant(f.user("430102", name="吴管理"), "admin", "region", "430102")
    # Two moral supermarkets, one in each township, each with a clerk of its own.
    now = utcnow()
    w.stores["s1"] = stores.create_store(actor=None, name="花果山村道德超市", region_code="43010101", now=now)
    w.stores["s2"] = stores.create_store(actor=None, name="大栗港村道德超市", region_code="43010201", now=now)
    w.items["oil"] = stores.add_item(
        actor=None, store_id=w.stores["s1"].id, name="食用油", unit="桶", points_price=10, stock=5, now=now
    )
    w.items["rice"] = stores.add_item(
        actor=None,
        store_id=w.stores["s1"].id,
        name="大米",
        unit="袋",
        points_price=5,
        stock=10,
        monthly_limit=2,
        now=now,
    )
    w.items["soap"] = stores.add_item(
        actor=None, store_id=w.stores["s2"].id, name="香皂", unit="块", points_price=2, stock=10, now=now
    )
    w.users["clerk"] = f.grant(f.user("43010101", name="刘店员"), "clerk", "store", w.stores["s1"].id)
    w.users["clerk_elsewhere"] = f.grant(f.user("43010201", name="何店员"), "clerk", "store", w.stores["s2"].id)
    return w


Value = Any | Callable[[World], Any]


@dataclass
class Case:
    """One route: how to call it, and the status each actor must get (`default` for the others)."""

    name: str
    method: str
    path: Value
    default: int
    expect: dict[str, int] = field(default_factory=dict)
    body: Value = None
    page: bool = False
    multipart: bool = False  # an API route whose body is a form with a file (an import)
    setup: Callable[[World], None] | None = None

    def status_for(self, actor: str) -> int:
        return self.expect.get(actor, self.default)


def _value(value: Value, world: World) -> Any:
    return value(world) if callable(value) else value


def csrf_token(client: FlaskClient) -> str:
    html = client.get("/privacy").get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "every page carries a CSRF token in its <meta>"
    return match.group(1)


def sign_in_page(client: FlaskClient, who: User) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = who.get_id()
        session["_fresh"] = True


def send(client: FlaskClient, case: Case, world: World, actor: str):
    if case.setup:
        case.setup(world)
    path, body = _value(case.path, world), _value(case.body, world)
    who = world.users.get(actor)
    if case.page:
        if who is not None:
            sign_in_page(client, who)
        kwargs: dict[str, Any] = {}
        if case.method != "GET":
            kwargs["data"] = {**(body or {}), "csrf_token": csrf_token(client)}
        return client.open(path, method=case.method, **kwargs)
    headers = f.bearer(who) if who is not None else {}
    if case.multipart:
        return client.open(path, method=case.method, data=body, headers=headers)
    return client.open(path, method=case.method, json=body, headers=headers)


def mismatch(client: FlaskClient, case: Case, world: World, actor: str) -> str | None:
    """Send `case` as `actor`; describe what went wrong, or None when the status is as expected."""
    response = send(client, case, world, actor)
    expected = case.status_for(actor)
    if response.status_code != expected:
        return f"{actor}: expected {expected}, got {response.status_code}: {response.get_data(as_text=True)[:200]}"
    if not case.page and response.status_code >= 400:
        problem = response.get_json(silent=True) or {}
        if (
            response.mimetype != "application/problem+json"
            or problem.get("status") != expected
            or not {"type", "title", "status", "detail", "code"} <= problem.keys()
        ):
            return f"{actor}: {expected} is not a problem+json document: {problem}"
    return None


def check_matrix(app, backend, case: Case, actors: tuple[str, ...] = ACTORS) -> None:
    """Every actor against one route. A route that changes state gets a fresh world per actor."""
    problems = []
    world = None
    for actor in actors:
        if world is None or case.method != "GET":
            backend.reset()
            world = build_world()
        problems.append(mismatch(app.test_client(), case, world, actor))
    problems = [p for p in problems if p]
    assert not problems, f"{case.name} ({case.method}):\n" + "\n".join(problems)


def check(client: FlaskClient, case: Case, world: World, actor: str) -> None:
    problem = mismatch(client, case, world, actor)
    assert problem is None, f"{case.name}: {problem}"
