"""Every points route against every kind of caller (API and pages)."""

from __future__ import annotations

import io

import pytest

from core.db import db, utcnow
from points import adjustments, archive, certificates, deeds
from tests import factories as f
from tests.authz import Case, World, check_matrix


def resident_id(w: World) -> int:
    return w.users["resident"].id


def pending_deed(w: World, name: str = "pending", **extra) -> int:
    if name not in w.extra:
        w.extra[name] = deeds.record(
            actor=w.users["grid_worker"],
            resident_id=resident_id(w),
            deed_type="haorenhaoshi",
            description="扶老人过马路",
            occurred_on=utcnow().date(),
            now=utcnow(),
            **extra,
        ).id
    return w.extra[name]


def approved_deed(w: World) -> int:
    if "approved" not in w.extra:
        deed = deeds.record(
            actor=w.users["grid_worker"],
            resident_id=resident_id(w),
            deed_type="lingliting",
            description="修路灯",
            occurred_on=utcnow().date(),
            now=utcnow(),
        )
        w.extra["approved"] = deeds.approve(actor=w.users["reviewer"], deed_id=deed.id, now=utcnow()).id
    return w.extra["approved"]


def objection(w: World) -> tuple[int, int]:
    if "objection" not in w.extra:
        deed_id = approved_deed(w)
        w.extra["objection"] = (
            deed_id,
            deeds.object_to(actor=w.users["target"], deed_id=deed_id, reason="情况不属实", now=utcnow()).id,
        )
    return w.extra["objection"]


def pending_adjustment(w: World) -> int:
    """A large adjustment for the resident, asked by a second admin of the county (so that the
    world's admin may approve it)."""
    if "adjustment" not in w.extra:
        requester = f.grant(f.user("4301", name="郑管理"), "admin", "region", "4301")
        w.extra["adjustment"] = adjustments.request(
            actor=requester, resident_id=resident_id(w), points=500, reason="抗洪表彰", key="authz", now=utcnow()
        ).id
    return w.extra["adjustment"]


def certificate_code(w: World) -> str:
    if "cert" not in w.extra:
        today = utcnow().date()
        w.extra["cert"] = certificates.issue(
            user=w.users["resident"], period_from=today.replace(day=1), period_to=today, now=utcnow()
        ).code
    return w.extra["cert"]


def photo_deed(w: World) -> int:
    return pending_deed(w, "photo", photo=f.picture())


def deed_body(w: World) -> dict:
    return {
        "resident_id": resident_id(w),
        "deed_type": "haorenhaoshi",
        "description": "帮邻居收稻谷",
        "occurred_on": utcnow().date().isoformat(),
    }


SIGNED_IN = {"anonymous": 401}
READERS = {"admin": 200, "reviewer": 200, "admin_elsewhere": 404, "anonymous": 401}
REVIEW = {"admin": 200, "reviewer": 200, "admin_elsewhere": 404, "anonymous": 401}
PAGE_SIGNED_IN = {"anonymous": 302}
ADMIN = {"admin": 201, "anonymous": 401}
PAGE_ADMINS = {"admin": 200, "admin_elsewhere": 200, "anonymous": 302}

CASES = [
    Case("my archive", "GET", "/api/v1/me/archive", 200, SIGNED_IN),
    Case("resident archive", "GET", lambda w: f"/api/v1/residents/{resident_id(w)}/archive", 403, READERS),
    Case("verify archive", "GET", lambda w: f"/api/v1/residents/{resident_id(w)}/archive/verify", 403, READERS),
    Case(
        "adjust",
        "POST",
        lambda w: f"/api/v1/residents/{resident_id(w)}/adjustments",
        403,
        {"admin": 201, "admin_elsewhere": 404, "anonymous": 401},
        body={"points": 5, "reason": "表彰"},
    ),
    Case(
        "list adjustments",
        "GET",
        "/api/v1/adjustments?status=pending",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 401},
    ),
    Case(
        "approve adjustment",
        "POST",
        lambda w: f"/api/v1/adjustments/{pending_adjustment(w)}/approve",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
        body={},
    ),
    Case(
        "reject adjustment",
        "POST",
        lambda w: f"/api/v1/adjustments/{pending_adjustment(w)}/reject",
        403,
        {"admin": 200, "admin_elsewhere": 404, "anonymous": 401},
        body={"reason": "材料不全"},
    ),
    Case("record deed", "POST", "/api/v1/deeds", 403, {"grid_worker": 201, "anonymous": 401}, body=deed_body),
    Case(
        "list deeds",
        "GET",
        "/api/v1/deeds",
        403,
        {"grid_worker": 200, "reviewer": 200, "admin": 200, "admin_elsewhere": 200, "anonymous": 401},
    ),
    Case("approve deed", "POST", lambda w: f"/api/v1/deeds/{pending_deed(w)}/approve", 403, REVIEW, body={}),
    Case("reject deed", "POST", lambda w: f"/api/v1/deeds/{pending_deed(w)}/reject", 403, REVIEW, body={}),
    Case(
        "void deed",
        "POST",
        lambda w: f"/api/v1/deeds/{approved_deed(w)}/void",
        403,
        REVIEW,
        body={"reason": "经核实不属实"},
    ),
    Case(
        "object to deed",
        "POST",
        lambda w: f"/api/v1/deeds/{approved_deed(w)}/objections",
        201,
        SIGNED_IN,
        body={"reason": "情况不属实"},
    ),
    Case(
        "resolve objection",
        "POST",
        lambda w: "/api/v1/deeds/{}/objections/{}/resolve".format(*objection(w)),
        403,
        REVIEW,
        body={"decision": "dismissed", "note": "经核实属实"},
    ),
    Case("deed types", "GET", "/api/v1/deed-types", 200),
    Case(
        "add deed type",
        "POST",
        "/api/v1/deed-types",
        403,
        ADMIN,
        body={"code": "zhuxue", "name": "助学捐款", "points": 8, "region_code": "4301"},
    ),
    Case(
        "change deed type",
        "PATCH",
        "/api/v1/deed-types/haorenhaoshi",
        403,
        {"admin": 200, "anonymous": 401},
        body={"points": 12, "region_code": "430101"},
    ),
    Case(
        "list point rules", "GET", "/api/v1/point-rules", 403, {"admin": 200, "admin_elsewhere": 200, "anonymous": 401}
    ),
    Case("point rule", "GET", "/api/v1/point-rules/430101", 403, {"admin": 200, "anonymous": 401}),
    Case(
        "set point rule",
        "PUT",
        "/api/v1/point-rules/430101",
        403,
        {"admin": 200, "anonymous": 401},
        body={"points_per_hour": 12, "expiry": "annual"},
    ),
    Case("check certificate", "GET", lambda w: f"/api/v1/certificates/{certificate_code(w)}", 200),
    Case(
        "issue certificate",
        "POST",
        "/api/v1/me/certificates",
        201,
        SIGNED_IN,
        body=lambda w: {"from": utcnow().date().replace(day=1).isoformat(), "to": utcnow().date().isoformat()},
    ),
    # Pages
    Case("my archive page", "GET", "/my/archive", 200, PAGE_SIGNED_IN, page=True),
    Case("certificate form", "GET", "/my/certificates", 200, PAGE_SIGNED_IN, page=True),
    Case(
        "certificate form post",
        "POST",
        "/my/certificates",
        302,
        page=True,
        body=lambda w: {"from": utcnow().date().replace(day=1).isoformat(), "to": utcnow().date().isoformat()},
    ),
    Case(
        "certificate print",
        "GET",
        lambda w: f"/my/certificates/{certificate_code(w)}",
        404,
        {"resident": 200, "anonymous": 302},
        page=True,
    ),
    Case("certificate check page", "GET", lambda w: f"/certificates/{certificate_code(w)}", 200, page=True),
    Case("certificate lookup form", "GET", "/certificates", 200, page=True),
    Case("certificate qr", "GET", lambda w: f"/certificates/{certificate_code(w)}.png", 200, page=True),
    Case(
        "residents page",
        "GET",
        "/admin/residents",
        403,
        {"admin": 200, "reviewer": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "resident page",
        "GET",
        lambda w: f"/admin/residents/{resident_id(w)}",
        403,
        {"admin": 200, "reviewer": 200, "admin_elsewhere": 404, "anonymous": 302},
        page=True,
    ),
    Case(
        "adjustments page",
        "GET",
        "/admin/adjustments",
        403,
        {"admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "adjustments form",
        "POST",
        "/admin/adjustments",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body=lambda w: {"action": "approve", "adjustment_id": str(pending_adjustment(w))},
    ),
    # A refusal inside the admin's reach comes back as a flash on the resident's page (302).
    Case(
        "adjust form",
        "POST",
        lambda w: f"/admin/residents/{resident_id(w)}/adjustments",
        403,
        {"admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body={"points": "5", "reason": "表彰", "key": "authz"},
    ),
    Case("deed types page", "GET", "/admin/deed-types", 403, PAGE_ADMINS, page=True),
    Case(
        "deed types page of a region",
        "GET",
        "/admin/deed-types?region=4301",
        403,
        {"admin": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "deed types form",
        "POST",
        "/admin/deed-types",
        403,
        {"admin": 302, "anonymous": 302},
        page=True,
        body={"region": "4301", "action": "add", "code": "zhuxue", "name": "助学捐款", "points": "8"},
    ),
    Case("point rules page", "GET", "/admin/point-rules", 403, PAGE_ADMINS, page=True),
    Case(
        "point rules page of a region",
        "GET",
        "/admin/point-rules?region=430101",
        403,
        {"admin": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "point rules form",
        "POST",
        "/admin/point-rules",
        403,
        {"admin": 302, "anonymous": 302},
        page=True,
        body={
            "region": "430101",
            "points_per_hour": "12",
            "rounding_minutes": "30",
            "minimum_minutes": "30",
            "daily_cap_minutes": "480",
            "expiry": "none",
            "settlement_month": "1",
            "settlement_day": "1",
            "notice_days": "3",
        },
    ),
    Case("deed form", "GET", "/deeds/new", 403, {"grid_worker": 200, "anonymous": 302}, page=True),
    Case(
        "deed form post",
        "POST",
        "/deeds/new",
        403,
        {"grid_worker": 302, "anonymous": 302},
        page=True,
        body=lambda w: {
            **deed_body(w),
            "resident_id": str(resident_id(w)),
            "photo": (io.BytesIO(f.picture()), "现场.jpg"),
        },
    ),
    Case(
        "deed photo",
        "GET",
        lambda w: f"/deeds/{photo_deed(w)}/photo",
        404,
        {"resident": 200, "grid_worker": 200, "reviewer": 200, "admin": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "review page",
        "GET",
        "/deeds/review",
        403,
        {"admin": 200, "reviewer": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "review form",
        "POST",
        "/deeds/review",
        403,
        {"admin": 302, "reviewer": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body=lambda w: {"action": "approve", "deed_id": str(pending_deed(w))},
    ),
    Case("notices page", "GET", "/notices", 200, page=True),
    Case(
        "objection form",
        "POST",
        lambda w: f"/notices/{approved_deed(w)}/objection",
        302,
        page=True,
        body={"reason": "情况不属实"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)


@pytest.mark.parametrize("actor", ["admin", "admin_elsewhere", "reviewer"])
def test_only_an_admin_in_scope_adjusts_through_the_resident_page(client, actor):
    from tests.authz import build_world, check

    world = build_world()
    check(client, next(c for c in CASES if c.name == "adjust form"), world, actor)
    posted = archive.totals(db.session, resident_id(world))["balance"]
    assert posted == (5 if actor == "admin" else 0)
