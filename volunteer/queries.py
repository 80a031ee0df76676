"""Read side of volunteer service that the API and the pages share: an activity's sign-ups and
attendance, the live check-in figures, a volunteer's own records, an organizer's activities.

Reads only: no writes, no rules, no authorization (the caller has found the activity through
`activities.organized` or `activities.get`, which decide who may see it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from community.models import Department, Region, User
from community.queries import within
from community.services import admin_regions
from core.db import db
from volunteer import activities
from volunteer.models import Activity, Attendance, Signup


def signups_of(activity: Activity) -> sa.Select:
    """The activity's sign-ups in the order they came (the API pages them; the organizer's page lists them)."""
    return sa.select(Signup).where(Signup.activity_id == activity.id).order_by(Signup.created_at, Signup.id)


def signup_of(activity: Activity, user: User) -> Signup | None:
    """The user's sign-up for the activity, whatever its status, if they ever signed up."""
    return db.session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id, Signup.user_id == user.id))


def attendances_of(activity: Activity) -> sa.Select:
    """The activity's attendance table, in the order people first arrived."""
    return sa.select(Attendance).where(Attendance.activity_id == activity.id).order_by(Attendance.id)


def latest_scans(activity: Activity, *, limit: int = 8) -> list[Attendance]:
    """The activity's most recently scanned attendances (in or out), annulled ones left out."""
    return list(
        db.session.scalars(
            sa.select(Attendance)
            .where(Attendance.activity_id == activity.id, Attendance.status != "annulled")
            .order_by(Attendance.updated_at.desc())
            .limit(limit)
        )
    )


def presence(activity: Activity) -> tuple[int, int]:
    """How many are inside now (checked in, not out), and how many checked in at all (annulled
    check-ins not counted)."""
    counted = sa.select(sa.func.count()).select_from(Attendance).where(Attendance.activity_id == activity.id)
    inside = db.session.scalar(counted.where(Attendance.status == "open"))
    checked_in = db.session.scalar(counted.where(Attendance.status != "annulled"))
    return inside or 0, checked_in or 0


def attendances_of_user(user: User) -> sa.Select:
    """A volunteer's attendance, the latest check-in first."""
    return sa.select(Attendance).where(Attendance.user_id == user.id).order_by(Attendance.checked_in_at.desc())


def attendance_by_activity(user: User) -> dict[int, Attendance]:
    """A volunteer's attendance, by activity id (one attendance per volunteer and activity)."""
    return {
        row.activity_id: row for row in db.session.scalars(sa.select(Attendance).where(Attendance.user_id == user.id))
    }


def signups_of_user(user: User, *, limit: int = 100) -> list[Signup]:
    """A volunteer's sign-ups, the latest first."""
    return list(
        db.session.scalars(
            sa.select(Signup).where(Signup.user_id == user.id).order_by(Signup.created_at.desc()).limit(limit)
        )
    )


def upcoming(
    viewer: User | None, *, now: datetime, category: str | None = None, text: str | None = None, limit: int = 100
) -> list[Activity]:
    """Published activities not yet over, soonest first: what a resident browses."""
    select = activities.browse(viewer, status="published", ends_after=now, category=category, text=text)
    return list(db.session.scalars(select.order_by(Activity.starts_at, Activity.id).limit(limit)))


def organizer_departments(organizer: User) -> list[Department]:
    """The departments whose activities `organizer` organizes."""
    ids = activities.organizer_departments(organizer)
    return list(db.session.scalars(sa.select(Department).where(Department.id.in_(ids))))


def activities_of(departments: Sequence[Department], *, limit: int = 100) -> list[Activity]:
    """The departments' activities, drafts included, the latest start first."""
    return list(
        db.session.scalars(
            sa.select(Activity)
            .where(Activity.department_id.in_([d.id for d in departments]))
            .order_by(Activity.starts_at.desc())
            .limit(limit)
        )
    )


def pending_reviews(actor: User, roles: Sequence[str]) -> list[Attendance]:
    """The make-ups waiting for `actor` (one of `roles` over regions) in those regions' subtrees,
    oldest first (at most 200: the page works through them)."""
    roots = admin_regions(actor, roles)
    return list(
        db.session.scalars(
            sa.select(Attendance)
            .join(Activity, Activity.id == Attendance.activity_id)
            .join(Region, Region.id == Activity.region_id)
            .where(Attendance.review == "pending", within(roots))
            .order_by(Attendance.updated_at)
            .limit(200)
        )
    )
