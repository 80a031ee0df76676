"""Every people-and-places route against every kind of caller (API and pages)."""

from __future__ import annotations

import io

import pytest

from community import services
from core.db import utcnow
from tests import factories as f
from tests.authz import ACTORS, Case, World, build_world, check, check_matrix


@pytest.fixture
def world(app) -> World:
    return build_world()


def _grant_to_target(w: World) -> int:
    if "grant_id" in w.extra:
        return w.extra["grant_id"]
    grant = services.grant_role(
        actor=None,
        user_id=w.users["target"].id,
        role="organizer",
        scope_type="department",
        scope_id=w.departments["d1"].id,
        now=utcnow(),
    )
    w.extra["grant_id"] = grant.id
    return grant.id


SIGNED_IN = {"anonymous": 401}
# An import is an admin's; an admin elsewhere gets the report, with every row outside their scope
# refused as a row error (tested in test_community_imports), not a 403.
IMPORTERS = {"admin": 200, "admin_elsewhere": 200, "anonymous": 401}


def _department_file(w: World) -> dict:
    content = "名称,地区编码\n桃花江镇文明办,430101\n".encode()
    return {"kind": "departments", "dry_run": "false", "file": (io.BytesIO(content), "departments.csv")}


ADMIN_ONLY = {"admin": 201, "anonymous": 401}

CASES = [
    Case("healthz", "GET", "/healthz", 200),
    Case(
        "register",
        "POST",
        "/api/v1/auth/register",
        201,
        body=lambda w: {"phone": f.next_phone(), "name": "新居民", "password": "Abcd1234", "region_code": "4301010101"},
    ),
    Case(
        "token",
        "POST",
        "/api/v1/auth/token",
        200,
        body=lambda w: {"phone": w.users["target"].phone, "password": f.PASSWORD},
    ),
    Case("me", "GET", "/api/v1/me", 200, SIGNED_IN),
    Case("my code", "GET", "/api/v1/me/code", 200, SIGNED_IN),
    Case("my code png", "GET", "/api/v1/me/code.png", 200, SIGNED_IN),
    Case(
        "grant role",
        "POST",
        "/api/v1/roles",
        403,
        ADMIN_ONLY,
        body=lambda w: {
            "user_id": w.users["target"].id,
            "role": "organizer",
            "scope_type": "department",
            "scope_id": w.departments["d1"].id,
        },
    ),
    Case("list roles", "GET", "/api/v1/roles", 403, {"admin": 200, "admin_elsewhere": 200, "anonymous": 401}),
    Case(
        "revoke role",
        "DELETE",
        lambda w: f"/api/v1/roles/{_grant_to_target(w)}",
        403,
        {"admin": 204, "admin_elsewhere": 404, "anonymous": 401},
    ),
    Case(
        "unlock user",
        "POST",
        lambda w: f"/api/v1/users/{w.users['target'].id}/unlock",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
    ),
    Case("list users", "GET", "/api/v1/users?q=李", 403, {"admin": 200, "admin_elsewhere": 200, "anonymous": 401}),
    Case(
        "list users of a region",
        "GET",
        "/api/v1/users?region_code=430101",
        403,
        {"admin": 200, "anonymous": 401},
    ),
    Case(
        "deactivate user",
        "PATCH",
        lambda w: f"/api/v1/users/{w.users['target'].id}",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
        body={"active": False},
    ),
    Case(
        "password reset code",
        "POST",
        lambda w: f"/api/v1/users/{w.users['target'].id}/password-reset",
        403,
        {"admin": 201, "admin_elsewhere": 404, "anonymous": 401},
    ),
    Case(
        "use a password reset code",
        "POST",
        "/api/v1/auth/password-reset",
        422,
        body=lambda w: {"phone": w.users["target"].phone, "code": "12345678", "password": "Newpass123"},
    ),
    Case("list regions", "GET", "/api/v1/regions", 200),
    Case("get region", "GET", "/api/v1/regions/430101", 200),
    Case(
        "create region",
        "POST",
        "/api/v1/regions",
        403,
        ADMIN_ONLY,
        body={"code": "43010102", "name": "桃花村", "level": "village", "parent_code": "430101"},
    ),
    Case("list departments", "GET", "/api/v1/departments", 200),
    Case(
        "create department",
        "POST",
        "/api/v1/departments",
        403,
        ADMIN_ONLY,
        body={"name": "桃花江镇文明办", "region_code": "430101"},
    ),
    Case("import", "POST", "/api/v1/imports", 403, IMPORTERS, body=_department_file, multipart=True),
    Case("import template", "GET", "/api/v1/imports/template?kind=residents", 403, IMPORTERS),
    # Pages: anonymous callers are sent to sign in (302); the wrong role gets a friendly 403 page.
    Case("home page", "GET", "/", 200, page=True),
    Case("privacy page", "GET", "/privacy", 200, page=True),
    Case("sign-up page", "GET", "/signup", 200, page=True),
    Case("sign-in page", "GET", "/login", 200, page=True),
    Case(
        "sign-up form",
        "POST",
        "/signup",
        302,
        page=True,
        body=lambda w: {
            "phone": f.next_phone(),
            "name": "新居民",
            "password": "Abcd1234",
            "region_code": "4301010101",
            "agree": "1",
        },
    ),
    Case(
        "sign-in form",
        "POST",
        "/login",
        302,
        page=True,
        body=lambda w: {"phone": w.users["target"].phone, "password": f.PASSWORD},
    ),
    Case("sign-out", "POST", "/logout", 302, page=True),
    Case(
        "password form",
        "POST",
        "/my/password",
        422,
        {"anonymous": 302},
        page=True,
        body={"old_password": "not-my-password1", "new_password": "Newpass123"},
    ),
    Case("my code page", "GET", "/my/code", 200, {"anonymous": 302}, page=True),
    Case("password page", "GET", "/my/password", 200, {"anonymous": 302}, page=True),
    Case(
        "admin regions page", "GET", "/admin/", 403, {"admin": 200, "admin_elsewhere": 200, "anonymous": 302}, page=True
    ),
    Case(
        "admin departments page",
        "GET",
        "/admin/departments",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin roles page",
        "GET",
        "/admin/roles",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin imports page",
        "GET",
        "/admin/imports",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin import form",
        "POST",
        "/admin/imports",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
        body=_department_file,
    ),
    # Admin forms redirect back with a flash; whether the change happened is checked below.
    Case(
        "admin create region form",
        "POST",
        "/admin/regions",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"code": "43010103", "name": "新村", "level": "village", "parent_code": "430101"},
    ),
    Case(
        "admin create department form",
        "POST",
        "/admin/departments",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"name": "新部门", "region_code": "430101"},
    ),
    Case(
        "admin grant form",
        "POST",
        "/admin/roles",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body=lambda w: {
            "user_id": w.users["target"].id,
            "role": "organizer",
            "scope_type": "department",
            "scope_id": w.departments["d1"].id,
        },
    ),
    Case(
        "admin unlock form",
        "POST",
        lambda w: f"/admin/users/{w.users['target'].id}/unlock",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin users page",
        "GET",
        "/admin/users?q=李",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin deactivate form",
        "POST",
        lambda w: f"/admin/users/{w.users['target'].id}/active",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"active": "0"},
    ),
    # The code is shown on the response itself (never a redirect); a refusal redirects with a flash.
    Case(
        "admin password reset form",
        "POST",
        lambda w: f"/admin/users/{w.users['target'].id}/password-reset",
        403,
        {"admin": 200, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
    ),
    Case("password reset page", "GET", "/password/reset", 200, page=True),
    Case(
        "password reset form",
        "POST",
        "/password/reset",
        422,
        page=True,
        body=lambda w: {"phone": w.users["target"].phone, "code": "12345678", "password": "Newpass123"},
    ),
    Case(
        "admin revoke form",
        "POST",
        lambda w: f"/admin/roles/{_grant_to_target(w)}/revoke",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)


@pytest.mark.parametrize("actor", ACTORS)
def test_only_an_admin_over_the_parent_can_add_a_region_through_the_form(client, world, actor):
    check(client, CASES[[c.name for c in CASES].index("admin create region form")], world, actor)
    created = services.region_by_code("43010103") is not None
    assert created == (actor == "admin")


@pytest.mark.parametrize("actor", ACTORS)
def test_only_an_admin_in_scope_can_grant_or_revoke_through_the_form(client, world, actor):
    from tests.authz import send

    send(client, CASES[[c.name for c in CASES].index("admin grant form")], world, actor)
    target = world.users["target"]
    from core.db import db

    db.session.expire_all()
    assert bool(target.grant_keys("organizer")) == (actor == "admin")


@pytest.mark.parametrize("actor", ACTORS)
def test_only_an_admin_in_scope_can_import_a_department(client, world, actor):
    check(client, CASES[[c.name for c in CASES].index("import")], world, actor)
    from community.models import Department
    from core.db import db

    db.session.expire_all()
    imported = db.session.query(Department).filter_by(name="桃花江镇文明办").count()
    assert imported == (1 if actor == "admin" else 0)


@pytest.mark.parametrize("actor", ACTORS)
def test_only_an_admin_in_scope_deactivates_through_the_form(client, world, actor):
    check(client, CASES[[c.name for c in CASES].index("admin deactivate form")], world, actor)
    from tests.factories import fresh

    fresh()
    assert world.users["target"].active is (actor != "admin")
