"""The second factor's and the audit log's routes against every kind of caller (API and pages).

The world's admin is over the county (4301), the admin elsewhere over the township 430102, the
reviewer over the township 430101; the target is a resident of 430101's grid.
"""

from __future__ import annotations

import pytest

from community import totp
from core.db import utcnow
from tests.authz import Case, World, check_matrix
from tests.factories import fresh

SIGNED_IN = {"anonymous": 401}
PAGE_SIGNED_IN = {"anonymous": 302}
# The audit log: admins and reviewers read the entries of their own regions (an admin elsewhere
# gets their own township's), nobody else.
AUDIT_READERS = {"admin": 200, "admin_elsewhere": 200, "reviewer": 200, "anonymous": 401}
AUDIT_PAGE = {"admin": 200, "admin_elsewhere": 200, "reviewer": 200, "anonymous": 302}


def _enrol_target(w: World) -> None:
    """The target has a second factor, so that an admin's reset has something to reset."""
    target = w.users["target"]
    enrolment = totp.start(target, utcnow())
    totp.confirm(target, totp.code_at(enrolment.secret, utcnow()), utcnow())
    fresh()


CASES = [
    # My own second factor: every signed-in person may enrol (409/302: nothing begun or enabled).
    Case("totp status", "GET", "/api/v1/me/totp", 200, SIGNED_IN),
    Case("totp start", "POST", "/api/v1/me/totp", 201, SIGNED_IN),
    Case("totp confirm", "POST", "/api/v1/me/totp/confirm", 409, SIGNED_IN, body={"code": "123456"}),
    Case("totp recovery codes", "POST", "/api/v1/me/totp/recovery-codes", 409, SIGNED_IN, body={"code": "123456"}),
    Case("totp disable", "POST", "/api/v1/me/totp/disable", 409, SIGNED_IN, body={"code": "123456"}),
    # An admin's reset: only an admin over the person (the admin elsewhere does not learn of them).
    Case(
        "totp reset",
        "POST",
        lambda w: f"/api/v1/users/{w.users['target'].id}/totp/reset",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
        setup=_enrol_target,
    ),
    Case(
        "region security",
        "GET",
        "/api/v1/regions/430101/security",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
    ),
    Case(
        "set region security",
        "PUT",
        "/api/v1/regions/430101/security",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
        body={"admin_totp_required": True},
    ),
    Case("audit log", "GET", "/api/v1/audit-log", 403, AUDIT_READERS),
    Case("audit log export", "GET", "/api/v1/audit-log/export?format=csv", 403, AUDIT_READERS),
    # Pages. The code step without a password step first sends back to the sign-in page.
    Case("sign-in code page", "GET", "/login/code", 302, page=True),
    Case("sign-in code form", "POST", "/login/code", 302, page=True, body={"code": "123456"}),
    Case("my security page", "GET", "/my/security", 200, PAGE_SIGNED_IN, page=True),
    Case("my security start", "POST", "/my/security/start", 302, page=True),
    Case("my security qr", "GET", "/my/security/qr.png", 404, PAGE_SIGNED_IN, page=True),
    Case("my security confirm", "POST", "/my/security/confirm", 302, page=True, body={"code": "123456"}),
    Case("my recovery codes", "POST", "/my/security/recovery-codes", 302, page=True, body={"code": "123456"}),
    Case("my security disable", "POST", "/my/security/disable", 302, page=True, body={"code": "123456"}),
    # Admin forms redirect back with a flash (a refusal included); the effect is checked below.
    Case(
        "admin totp reset form",
        "POST",
        lambda w: f"/admin/users/{w.users['target'].id}/totp-reset",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        setup=_enrol_target,
    ),
    Case(
        "admin security page",
        "GET",
        "/admin/security",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "admin security form",
        "POST",
        "/admin/security",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"region_code": "430101", "setting": "required"},
    ),
    Case("audit page", "GET", "/admin/audit", 403, AUDIT_PAGE, page=True),
    Case("audit export", "GET", "/admin/audit/export?format=xlsx", 403, AUDIT_PAGE, page=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)


@pytest.mark.parametrize("actor", ["admin", "admin_elsewhere", "reviewer", "resident"])
def test_only_an_admin_over_the_person_resets_their_second_factor_through_the_form(app, backend, actor):
    from tests.authz import build_world, send

    backend.reset()
    world = build_world()
    case = CASES[[c.name for c in CASES].index("admin totp reset form")]
    send(app.test_client(), case, world, actor)
    fresh()
    from community.models import User
    from core.db import db

    assert (db.session.get(User, world.users["target"].id).totp_secret is None) == (actor == "admin")


@pytest.mark.parametrize("actor", ["admin", "admin_elsewhere", "reviewer"])
def test_only_an_admin_over_the_region_sets_its_rule_through_the_form(app, backend, actor):
    from tests.authz import build_world, send

    backend.reset()
    world = build_world()
    send(app.test_client(), CASES[[c.name for c in CASES].index("admin security form")], world, actor)
    region = world.regions["t1"]
    fresh()
    assert totp.rule_for(region).required == (actor == "admin")
