"""Attendance: check-in and check-out by venue code or personal code, corrections, annulment,
closing missed check-outs — and turning time served into points through `points`.

A scan toggles: no attendance → check in; open → check out (and settle points). Scans within a
minute of the last change do nothing (no flapping). Points are credited with the key
`attendance:<id>:<version>`; a correction reverses the credit and credits again under a new
version, never editing what was written (DESIGN §2). Hours entered by hand are marked manual.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from community import accounts
from community.models import User
from core import audit
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound, message
from points import awards, policies
from points.rules import credit
from volunteer import activities, signups, tokens
from volunteer.models import Activity, Attendance, AttendanceCorrection, Signup

DEBOUNCE = timedelta(minutes=1)
OPEN_STATES = ("published", "finished")


def _signed_up(activity: Activity, user: User, now: datetime) -> None:
    """Only confirmed volunteers check in; a walk-in is signed up on the spot if allowed."""
    status = db.session.scalar(
        sa.select(Signup.status).where(Signup.activity_id == activity.id, Signup.user_id == user.id)
    )
    if status == "confirmed":
        return
    if activity.allow_walk_in and status in (None, "cancelled", "waitlisted"):
        if status == "waitlisted":
            db.session.execute(
                sa.update(Signup)
                .where(Signup.activity_id == activity.id, Signup.user_id == user.id)
                .values(status="confirmed", walk_in=True, updated_at=now)
            )
        else:
            db.session.rollback()
            signups.sign_up(user=user, activity_id=activity.id, now=now, walk_in=True)
        return
    raise Invalid("not_confirmed" if status in ("pending", "waitlisted") else "not_signed_up")


def scan_venue_code(*, user: User, token: str, now: datetime) -> tuple[Attendance, str]:
    activity = db.session.get(Activity, tokens.activity_id(token))
    if activity is None:
        raise Invalid("token_invalid")
    tokens.verify(token, activity, now)
    if activity.status not in OPEN_STATES:
        raise Invalid("activity_not_open")
    return _toggle(activity, user, now, method="venue", operator=None)


def scan_personal_code(*, organizer: User, activity_id: int, code: str, now: datetime) -> tuple[Attendance, str]:
    activity = activities.organized(organizer, activity_id)
    if activity.status not in OPEN_STATES:
        raise Invalid("activity_not_open")
    tokens.require_window(activity, now)
    volunteer = accounts.resolve_personal_code(code, now)
    return _toggle(activity, volunteer, now, method="kiosk", operator=organizer)


def _toggle(activity: Activity, user: User, now: datetime, *, method: str, operator: User | None):
    _signed_up(activity, user, now)
    try:
        with unit_of_work() as session:
            # The activity row lock orders scans of one activity; the unique (activity, user)
            # index is the last word if two first scans still race.
            session.get(Activity, activity.id, with_for_update=True)
            row = session.scalar(
                sa.select(Attendance).where(Attendance.activity_id == activity.id, Attendance.user_id == user.id)
            )
            if row is None:
                row = Attendance(
                    activity_id=activity.id,
                    user_id=user.id,
                    checked_in_at=now,
                    status="open",
                    method_in=method,
                    operator_id=getattr(operator, "id", None),
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return _scanned(row, "check_in", activity, method, operator or user, now)
            if now - row.updated_at < DEBOUNCE:
                return row, "check_in" if row.status == "open" else "check_out"
            if row.status != "open":
                raise Conflict("already_checked_out")
            row.checked_out_at, row.method_out, row.status, row.updated_at = now, method, "closed", now
            _settle(row, now, actor_id=getattr(operator, "id", None))
            return _scanned(row, "check_out", activity, method, operator or user, now)
    except IntegrityError:
        db.session.rollback()
        row = db.session.scalar(
            sa.select(Attendance).where(Attendance.activity_id == activity.id, Attendance.user_id == user.id)
        )
        return row, "check_in"


def _scanned(row: Attendance, action: str, activity: Activity, method: str, actor: User, now: datetime):
    audit.record(
        f"attendance.{action}",
        "attendance",
        row.id,
        actor=actor,
        after={"method": method, "at": now, "points": row.points},
        region_id=activity.region_id,
        now=now,
    )
    return row, action


def _day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    start = datetime.combine(moment.astimezone(zone).date(), time.min, tzinfo=zone)
    return start, start + timedelta(days=1)


def _settle(row: Attendance, now: datetime, *, actor_id: int | None) -> None:
    """Credit the attendance's time through the points rule and ledger (in the caller's unit)."""
    activity = row.activity
    start, end = _day_bounds(row.checked_in_at)
    already = (
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Attendance.credited_minutes), 0)).where(
                Attendance.user_id == row.user_id,
                Attendance.id != row.id,
                Attendance.status.in_(("closed", "auto")),
                Attendance.checked_in_at >= start,
                Attendance.checked_in_at < end,
            )
        )
        or 0
    )
    rule = policies.rule_for(
        db.session, activity.region, activity.category, {"points_per_hour": activity.points_per_hour}
    )
    result = credit(row.checked_in_at, row.checked_out_at, activity.starts_at, activity.ends_at, rule, already)
    key = f"attendance:{row.id}:{row.version}"
    awards.credit_service(
        user_id=row.user_id,
        department_id=activity.department_id,
        credit=result,
        key=key,
        now=now,
        actor_id=actor_id,
        manual=row.manual,
        cause=("attendance", row.id),
        activity={
            "title": activity.title,
            "category": activity.category,
            "organizer": activity.department.name,
            "place": activity.address,
            "date": activity.starts_at.isoformat(),
            "activity_id": activity.id,
        },
    )
    row.credited_minutes, row.points, row.credit_key = result.credited_minutes, result.points, key


def _unsettle(row: Attendance, reason: str, now: datetime, actor_id: int | None) -> None:
    if row.credit_key:
        awards.reverse_service(
            key=row.credit_key, new_key=f"{row.credit_key}:reversed", reason=reason, now=now, actor_id=actor_id
        )
    row.credited_minutes, row.points, row.credit_key = 0, 0, None
    row.version += 1


def correct(
    *,
    actor: User,
    activity_id: int,
    user_id: int,
    checked_in_at: datetime | None,
    checked_out_at: datetime | None,
    reason: str,
    now: datetime,
) -> Attendance:
    """Back-fill or correct one volunteer's times, with a mandatory reason; points re-settled."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写补录或更正的原因"]})
    if checked_in_at is None or checked_out_at is None:
        raise Invalid("times_invalid", errors={"checked_in_at": ["请填写签到和签退时间"]})
    if checked_out_at < checked_in_at or checked_in_at > now + timedelta(minutes=5):
        raise Invalid("times_invalid", errors={"checked_out_at": ["签退须晚于签到，且签到不能在将来"]})
    with unit_of_work() as session:
        activity = activities.organized(actor, activity_id, lock=True)
        row = session.scalar(
            sa.select(Attendance).where(Attendance.activity_id == activity.id, Attendance.user_id == user_id)
        )
        before = None
        if row is None:
            # A back-fill is for a volunteer who came but did not scan: only one signed up and
            # confirmed for this activity, never an arbitrary resident.
            signed_up = session.scalar(
                sa.select(Signup.status).where(Signup.activity_id == activity.id, Signup.user_id == user_id)
            )
            if signed_up != "confirmed":
                raise Invalid("volunteer_not_signed_up", errors={"user_id": [message("volunteer_not_signed_up")]})
            row = Attendance(
                activity_id=activity.id,
                user_id=user_id,
                checked_in_at=checked_in_at,
                method_in="manual",
                status="closed",
                updated_at=now,
            )
            session.add(row)
            session.flush()
        else:
            before = {
                "checked_in_at": row.checked_in_at,
                "checked_out_at": row.checked_out_at,
                "status": row.status,
                "credited_minutes": row.credited_minutes,
                "points": row.points,
            }
            _unsettle(row, reason, now, actor.id)
        row.checked_in_at, row.checked_out_at = checked_in_at, checked_out_at
        row.status, row.method_out, row.manual, row.operator_id, row.updated_at = (
            "closed",
            "manual",
            True,
            actor.id,
            now,
        )
        _settle(row, now, actor_id=actor.id)
        after = {
            "checked_in_at": checked_in_at,
            "checked_out_at": checked_out_at,
            "credited_minutes": row.credited_minutes,
            "points": row.points,
        }
        session.add(
            AttendanceCorrection(
                attendance_id=row.id,
                before=_plain(before),
                after=_plain(after),
                reason=reason[:255],
                actor_id=actor.id,
                created_at=now,
            )
        )
        audit.record(
            "attendance.correct",
            "attendance",
            row.id,
            actor=actor,
            before=before,
            after=after,
            region_id=activity.region_id,
            now=now,
        )
    return row


def annul(*, actor: User, activity_id: int, user_id: int, reason: str, now: datetime) -> Attendance:
    """Annul a wrong check-in: its points are reversed; the row stays, marked annulled."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写原因"]})
    with unit_of_work() as session:
        activity, row = _organized_row(session, actor, activity_id, user_id)
        _unsettle(row, reason, now, actor.id)
        row.status, row.updated_at = "annulled", now
        audit.record(
            "attendance.annul",
            "attendance",
            row.id,
            actor=actor,
            after={"reason": reason},
            region_id=activity.region_id,
            now=now,
        )
    return row


def _organized_row(session, actor: User, activity_id: int, user_id: int) -> tuple[Activity, Attendance]:
    """The activity (which `actor` must organize) and one volunteer's attendance, locked."""
    activity = activities.organized(actor, activity_id)
    row = session.scalar(
        sa.select(Attendance)
        .where(Attendance.activity_id == activity.id, Attendance.user_id == user_id)
        .with_for_update()
    )
    if row is None:
        raise NotFound()
    return activity, row


def confirm(*, actor: User, activity_id: int, user_id: int, now: datetime) -> Attendance:
    """The organizer confirms a check-out the job closed at the activity's end ('auto'): the time
    and points stand as credited. To change them, correct instead (with a reason)."""
    with unit_of_work() as session:
        activity, row = _organized_row(session, actor, activity_id, user_id)
        if row.status != "auto":
            raise Conflict("not_auto_closed")
        row.status, row.updated_at = "closed", now
        audit.record(
            "attendance.confirm",
            "attendance",
            row.id,
            actor=actor,
            before={"status": "auto"},
            after={"status": "closed", "credited_minutes": row.credited_minutes, "points": row.points},
            region_id=activity.region_id,
            now=now,
        )
    return row


def close_missed_checkouts(*, now: datetime) -> int:
    """At an activity's end (plus grace), close open attendances at the end time, marked 'auto'
    for the organizer to confirm; credit only what the rule allows."""
    due = db.session.scalars(
        sa.select(Attendance.id)
        .join(Activity)
        .where(Attendance.status == "open", Activity.ends_at <= now - tokens.CLOSE_AFTER)
        .order_by(Attendance.id)
    ).all()

    db.session.rollback()
    for attendance_id in due:
        with unit_of_work() as session:
            row = session.get(Attendance, attendance_id, with_for_update=True, populate_existing=True)
            if row.status != "open":
                continue
            row.checked_out_at = max(row.checked_in_at, row.activity.ends_at)
            row.method_out, row.status, row.updated_at = "auto", "auto", now
            _settle(row, now, actor_id=None)
            audit.record(
                "attendance.auto_close",
                "attendance",
                row.id,
                after={"checked_out_at": row.checked_out_at},
                region_id=row.activity.region_id,
                now=now,
            )
    return len(due)


def _plain(value):
    if value is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in value.items()}
