"""What volunteer service holds of a resident, for their own export, and what it needs settled or
does when they close their account (hooks of `community.privacy`, added by `init_app`).

A closure waits while the resident is checked in somewhere or a make-up of theirs awaits review;
it cancels their sign-ups for activities not yet begun (freeing places for the waitlist). Their
attendances stay as they are: they are the service record, under the pseudonym.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from community.models import User
from core import audit
from core.errors import Conflict
from volunteer import activities, signups
from volunteer.models import Activity, Attendance, Signup

OPEN_SIGNUPS = ("confirmed", "waitlisted", "pending")


def signups_of(session: Session, user: User) -> list[dict[str, Any]]:
    proxy = aliased(User)
    rows = session.execute(
        sa.select(Signup, Activity.title, Activity.starts_at, Activity.address, proxy.name)
        .join(Activity, Activity.id == Signup.activity_id)
        .outerjoin(proxy, proxy.id == Signup.proxy_by_id)
        .where(Signup.user_id == user.id)
        .order_by(Signup.created_at, Signup.id)
    ).all()
    return [
        {
            "activity_id": s.activity_id,
            "activity": title,
            "starts_at": starts_at,
            "address": address,
            "status": s.status,
            "walk_in": s.walk_in,
            "no_show": s.no_show,
            "signed_up_at": s.created_at,
            "proxy_by": proxy_name,
        }
        for s, title, starts_at, address, proxy_name in rows
    ]


def attendances_of(session: Session, user: User) -> list[dict[str, Any]]:
    proxy = aliased(User)
    rows = session.execute(
        sa.select(Attendance, Activity.title, proxy.name)
        .join(Activity, Activity.id == Attendance.activity_id)
        .outerjoin(proxy, proxy.id == Attendance.proxy_by_id)
        .where(Attendance.user_id == user.id)
        .order_by(Attendance.checked_in_at, Attendance.id)
    ).all()
    return [
        {
            "activity_id": a.activity_id,
            "activity": title,
            "checked_in_at": a.checked_in_at,
            "checked_out_at": a.checked_out_at,
            "status": a.status,
            "method_in": a.method_in,
            "method_out": a.method_out,
            "credited_minutes": a.credited_minutes,
            "points": a.points,
            "makeup_minutes": a.makeup_minutes,
            "review": a.review,
            "proxy_by": proxy_name,
        }
        for a, title, proxy_name in rows
    ]


def nothing_open(session: Session, user: User, now: datetime) -> None:
    """Refuse a closure while the resident is checked in, or a make-up of theirs awaits review."""
    inside = session.scalar(
        sa.select(Activity.title)
        .join(Attendance, Attendance.activity_id == Activity.id)
        .where(Attendance.user_id == user.id, Attendance.status == "open")
        .limit(1)
    )
    if inside is not None:
        raise Conflict("close_attendance_open", f"您在「{inside}」的签到还没有签退，请先签退再注销账号")
    waiting = session.scalar(
        sa.select(Activity.title)
        .join(Attendance, Attendance.activity_id == Activity.id)
        .where(Attendance.user_id == user.id, Attendance.review == "pending")
        .limit(1)
    )
    if waiting is not None:
        raise Conflict("close_makeup_pending", f"您在「{waiting}」的补录正在等待审核，请审核完成后再注销账号")


def cancel_future_signups(session: Session, user: User, now: datetime) -> None:
    """Cancel the resident's sign-ups for activities not yet begun; a freed place goes to the first
    on the waitlist, as a cancellation of their own would."""
    ids = session.scalars(
        sa.select(Signup.activity_id)
        .join(Activity, Activity.id == Signup.activity_id)
        .where(Signup.user_id == user.id, Signup.status.in_(OPEN_SIGNUPS), Activity.starts_at > now)
        .order_by(Signup.activity_id)
    ).all()
    for activity_id in ids:
        activity = activities.get(activity_id, lock=True)  # places are counted under its lock
        signup = session.scalar(
            sa.select(Signup)
            .where(Signup.activity_id == activity_id, Signup.user_id == user.id)
            .execution_options(populate_existing=True)
        )
        freed = signup.status == "confirmed"
        signup.status, signup.updated_at = "cancelled", now
        audit.record(
            "signup.cancel",
            "signup",
            signup.id,
            actor=user,
            after={"status": "cancelled", "because": "account_closed"},
            region_id=activity.region_id,
            now=now,
        )
        if freed:
            signups.promote(activity, now)
