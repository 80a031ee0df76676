"""Every volunteer route against every kind of caller: organizers manage only their department's
activities; volunteers act only for themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from community import accounts
from core.db import utcnow
from tests.authz import Case, World, check_matrix
from tests.volunteer_helpers import draft, finished, pending_signup, running, upcoming
from volunteer import attendance, signups, tokens
from volunteer.models import Activity

SIGNED_IN = {"anonymous": 401}
ORGANIZER = {"organizer": 200, "anonymous": 401}
PAGE_ORGANIZER = {"organizer": 200, "anonymous": 302}


def body(w: World) -> dict:
    start = utcnow().replace(microsecond=0) + timedelta(days=3)
    return {
        "title": "反诈宣传",
        "category": "法治宣传",
        "department_id": w.departments["d1"].id,
        "region_code": "43010101",
        "address": "村部广场",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "capacity": 20,
    }


def venue_token(w: World) -> str:
    from core.db import db

    return tokens.rotating(db.session.get(Activity, running(w)), utcnow())[0]


def signed_up_resident(w: World) -> str:
    signups.sign_up(user=w.users["resident"], activity_id=upcoming(w), now=utcnow())
    return f"/api/v1/activities/{upcoming(w)}/signups/me"


def target_code(w: World) -> dict:
    return {"code": accounts.personal_code(w.users["target"], utcnow())[0]}


def times(w: World) -> dict:
    start = utcnow().replace(microsecond=0) - timedelta(minutes=90)
    return {
        "checked_in_at": start.isoformat(),
        "checked_out_at": (start + timedelta(minutes=60)).isoformat(),
        "reason": "忘记签到，组织者核实补录",
    }


def target_attendance(w: World) -> str:
    """The path of the target's attendance at the running activity, which they signed up for."""
    if "target_signed_up" not in w.extra:
        signups.sign_up(user=w.users["target"], activity_id=running(w), now=utcnow())
        w.extra["target_signed_up"] = True
    return f"/api/v1/activities/{running(w)}/attendances/{w.users['target'].id}"


def back_filled(w: World, minutes_ago: int, minutes: int) -> str:
    """The target's attendance at the running activity, back-filled by the organizer once."""
    path = target_attendance(w)
    if "back_filled" not in w.extra:
        start = utcnow().replace(microsecond=0) - timedelta(minutes=minutes_ago)
        attendance.correct(
            actor=w.users["organizer"],
            activity_id=running(w),
            user_id=w.users["target"].id,
            checked_in_at=start,
            checked_out_at=start + timedelta(minutes=minutes),
            reason="忘记扫码",
            now=utcnow(),
        )
        w.extra["back_filled"] = True
    return path


def makeup_path(w: World) -> str:
    """A back-fill inside the running activity's window: a make-up waiting for review."""
    return back_filled(w, 40, 40)


def annul_path(w: World) -> str:
    return back_filled(w, 90, 60) + "/annul"


REVIEWER = {"reviewer": 200, "admin": 200, "admin_elsewhere": 404, "anonymous": 401}


CASES = [
    Case("create activity", "POST", "/api/v1/activities", 403, {"organizer": 201, "anonymous": 401}, body=body),
    Case("edit activity", "PATCH", lambda w: f"/api/v1/activities/{upcoming(w)}", 403, ORGANIZER, body=body),
    Case("publish", "POST", lambda w: f"/api/v1/activities/{draft(w)}/publish", 403, ORGANIZER),
    Case("cancel", "POST", lambda w: f"/api/v1/activities/{upcoming(w)}/cancel", 403, ORGANIZER),
    Case("finish", "POST", lambda w: f"/api/v1/activities/{running(w)}/finish", 403, ORGANIZER),
    Case("close", "POST", lambda w: f"/api/v1/activities/{finished(w)}/close", 403, ORGANIZER),
    Case("list activities", "GET", "/api/v1/activities", 200),
    Case("get activity", "GET", lambda w: f"/api/v1/activities/{running(w)}", 200),
    Case("sign up", "POST", lambda w: f"/api/v1/activities/{upcoming(w)}/signups", 201, SIGNED_IN),
    Case("cancel my sign-up", "DELETE", signed_up_resident, 404, {"resident": 200, "anonymous": 401}),
    Case("list sign-ups", "GET", lambda w: f"/api/v1/activities/{running(w)}/signups", 403, ORGANIZER),
    Case(
        "approve sign-up",
        "POST",
        lambda w: "/api/v1/activities/{}/signups/{}/approve".format(*pending_signup(w)),
        403,
        ORGANIZER,
    ),
    Case(
        "reject sign-up",
        "POST",
        lambda w: "/api/v1/activities/{}/signups/{}/reject".format(*pending_signup(w)),
        403,
        ORGANIZER,
    ),
    Case("venue code", "GET", lambda w: f"/api/v1/activities/{running(w)}/venue-code", 403, ORGANIZER),
    Case(
        "venue code png", "GET", lambda w: f"/api/v1/activities/{running(w)}/venue-code.png?mode=poster", 403, ORGANIZER
    ),
    Case("check in", "POST", "/api/v1/checkins", 200, SIGNED_IN, body=lambda w: {"token": venue_token(w)}),
    Case("kiosk scan", "POST", lambda w: f"/api/v1/activities/{running(w)}/scans", 403, ORGANIZER, body=target_code),
    Case(
        "correct attendance",
        "PUT",
        target_attendance,
        403,
        ORGANIZER,
        body=times,
    ),
    Case("annul attendance", "POST", annul_path, 403, ORGANIZER, body={"reason": "签错了人"}),
    Case("approve make-up", "POST", lambda w: makeup_path(w) + "/approve", 403, REVIEWER, body={}),
    Case("reject make-up", "POST", lambda w: makeup_path(w) + "/reject", 403, REVIEWER, body={"reason": "无人作证"}),
    Case("attendance table", "GET", lambda w: f"/api/v1/activities/{running(w)}/attendances", 403, ORGANIZER),
    Case("live counts", "GET", lambda w: f"/api/v1/activities/{running(w)}/live", 403, ORGANIZER),
    Case("my attendances", "GET", "/api/v1/me/attendances", 200, SIGNED_IN),
    # Pages
    Case("activity list page", "GET", "/activities", 200, page=True),
    Case("activity page", "GET", lambda w: f"/activities/{running(w)}", 200, page=True),
    Case(
        "sign-up form", "POST", lambda w: f"/activities/{upcoming(w)}/signup", 302, page=True, body={"action": "signup"}
    ),
    Case("scan landing", "GET", lambda w: f"/scan?t={venue_token(w)}", 200, {"anonymous": 302}, page=True),
    Case("scan confirm", "POST", "/scan", 200, {"anonymous": 302}, page=True, body=lambda w: {"t": venue_token(w)}),
    Case("my activities page", "GET", "/my/activities", 200, {"anonymous": 302}, page=True),
    Case("organizer dashboard", "GET", "/organizer/", 403, PAGE_ORGANIZER, page=True),
    Case("new activity page", "GET", "/organizer/activities/new", 403, PAGE_ORGANIZER, page=True),
    Case(
        "new activity form",
        "POST",
        "/organizer/activities/new",
        403,
        {"organizer": 302, "anonymous": 302},
        page=True,
        body=lambda w: {
            "title": "巡逻",
            "category": "平安巡逻",
            "department_id": w.departments["d1"].id,
            "address": "村口",
            "starts_at": "2030-05-01T09:00",
            "ends_at": "2030-05-01T11:00",
        },
    ),
    Case("manage page", "GET", lambda w: f"/organizer/activities/{running(w)}", 403, PAGE_ORGANIZER, page=True),
    Case(
        "manage form",
        "POST",
        lambda w: f"/organizer/activities/{draft(w)}",
        403,
        {"organizer": 302, "anonymous": 302},
        page=True,
        body={"action": "publish"},
    ),
    Case("edit page", "GET", lambda w: f"/organizer/activities/{upcoming(w)}/edit", 403, PAGE_ORGANIZER, page=True),
    Case(
        "edit form",
        "POST",
        lambda w: f"/organizer/activities/{draft(w)}/edit",
        403,
        {"organizer": 302, "anonymous": 302},
        page=True,
        body={
            "title": "河道垃圾清理（第二次）",
            "category": "环境整治",
            "address": "花果山村河边",
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T11:00",
        },
    ),
    Case("live screen", "GET", lambda w: f"/organizer/activities/{running(w)}/live", 403, PAGE_ORGANIZER, page=True),
    Case("poster", "GET", lambda w: f"/organizer/activities/{running(w)}/poster", 403, PAGE_ORGANIZER, page=True),
    Case("kiosk", "GET", lambda w: f"/organizer/activities/{running(w)}/kiosk", 403, PAGE_ORGANIZER, page=True),
    Case(
        "make-up review page",
        "GET",
        "/reviewer/makeups",
        403,
        {"reviewer": 200, "admin": 200, "admin_elsewhere": 200, "anonymous": 302},
        page=True,
    ),
    Case(
        "make-up review form",
        "POST",
        "/reviewer/makeups",
        403,
        {"reviewer": 302, "admin": 302, "admin_elsewhere": 302, "anonymous": 302},
        page=True,
        body=lambda w: {"action": "approve", "activity_id": running(w), "user_id": w.users["target"].id},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)
