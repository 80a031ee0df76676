"""Attendance: check-in and check-out by venue code or personal code, corrections, make-ups under
the four-eyes rule, annulment, closing missed check-outs — and turning time served into points
through `points`.

A scan toggles: no attendance → check in; open → check out (and settle points). Scans within a
minute of the last change do nothing (no flapping). One person is in one place: a check-in while
an attendance elsewhere is open is refused, and minutes already credited elsewhere never count
twice. Points are credited with the key `attendance:<id>:<version>` (and `…:makeup` for hand-added
minutes); a correction reverses the credit in full and credits again under a new version, never
editing what was written (DESIGN §2). Minutes beyond those the scans earned are a make-up: they
post only when a reviewer who is neither the recorder nor the resident approves (API.md).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from community import accounts
from community.models import User
from core import audit, clock
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound, message
from core.security import authorize
from points import awards, duties, policies
from points.rules import Credit, Rule, credit
from volunteer import activities, signups, tokens
from volunteer.models import Activity, Attendance, AttendanceCorrection, Signup

DEBOUNCE = timedelta(minutes=1)
NEAR = timedelta(hours=12)  # a correction's times lie within this of the activity's window
OPEN_STATES = ("published", "finished")
SETTLED = ("closed", "auto")
REVIEWERS = duties.REVIEWERS


class _Exclusive(Exception):
    """A scan found it must sign a walk-in up: it needs the activity to itself (places)."""


def _signed_up(session, activity: Activity, user: User, now: datetime, exclusive: bool) -> None:
    """Only confirmed volunteers check in; a walk-in is signed up on the spot if allowed (in the
    scan's own unit of work, so the sign-up and the check-in stand or fall together)."""
    status = session.scalar(
        sa.select(Signup.status).where(Signup.activity_id == activity.id, Signup.user_id == user.id)
    )
    if status == "confirmed":
        return
    if activity.allow_walk_in and status in (None, "cancelled", "waitlisted"):
        if status == "waitlisted":
            session.execute(
                sa.update(Signup)
                .where(Signup.activity_id == activity.id, Signup.user_id == user.id)
                .values(status="confirmed", walk_in=True, updated_at=now)
            )
        elif not exclusive:
            raise _Exclusive()  # a new sign-up counts places: the scan starts again, exclusively
        else:
            signups.sign_up(user=user, activity_id=activity.id, now=now, walk_in=True)
        return
    raise Invalid("not_confirmed" if status in ("pending", "waitlisted") else "not_signed_up")


def _not_elsewhere(session, activity: Activity, user: User) -> None:
    """One person, one place: refuse a check-in while an attendance elsewhere is still open."""
    elsewhere = session.execute(
        sa.select(Activity.title)
        .join(Attendance, Attendance.activity_id == Activity.id)
        .where(Attendance.user_id == user.id, Attendance.status == "open", Attendance.activity_id != activity.id)
        .limit(1)
    ).scalar()
    if elsewhere is not None:
        raise Conflict("open_elsewhere", f"您在「{elsewhere}」的签到还没有签退，请先在那里签退")


def scan_venue_code(*, user: User, token: str, now: datetime) -> tuple[Attendance, str]:
    """A volunteer scans the venue's code: check in, or out (and settle points), in one unit of work."""
    activity_id = tokens.activity_id(token)

    def venue(session, exclusive: bool) -> tuple[Activity, User]:
        activity = _locked(session, activity_id, exclusive)
        if activity is None:
            raise tokens.refused("token_invalid")
        tokens.verify(token, activity, now)
        if activity.status not in OPEN_STATES:
            raise Invalid("activity_not_open")
        return activity, user

    return _scan(venue, now, method="venue", operator=None)


def scan_personal_code(*, organizer: User, activity_id: int, code: str, now: datetime) -> tuple[Attendance, str]:
    """The organizer's kiosk scans a volunteer's personal code: the same toggle, by their hand."""
    authorize(organizer, "organizer")

    def kiosk(session, exclusive: bool) -> tuple[Activity, User]:
        activity = _locked(session, activity_id, exclusive)
        if activity is None:
            raise NotFound("activity_not_found")
        authorize(organizer, "organizer", activity, hide=True)
        if activity.status not in OPEN_STATES:
            raise Invalid("activity_not_open")
        tokens.require_window(activity, now)
        volunteer = accounts.resolve_personal_code(code, now)
        duties.require_not_beneficiary(organizer, volunteer)  # nobody scans their own (or household's)
        return activity, volunteer

    return _scan(kiosk, now, method="kiosk", operator=organizer)


def _locked(session, activity_id: int, exclusive: bool) -> Activity | None:
    """The activity, read fresh with its region and department in the same statement (the scope
    check, the rule and the archive need them; three lookups would be three statements on the
    busiest path), and locked. Scans share the lock (PostgreSQL FOR SHARE): scans of one crowded
    venue run side by side, each volunteer's own row and account ordering their own, while a
    correction, a cancellation or a sign-up (FOR UPDATE) waits for them and they for it. A scan
    that must sign a walk-in up takes it `exclusive`, as a sign-up does."""
    return session.get(
        Activity,
        activity_id,
        options=[joinedload(Activity.region, innerjoin=True), joinedload(Activity.department, innerjoin=True)],
        with_for_update={"of": Activity, "read": not exclusive},
        populate_existing=True,
    )


def _scan(find, now: datetime, *, method: str, operator: User | None) -> tuple[Attendance, str]:
    """One scan, one unit of work: `find(session, exclusive)` locks the activity and says who
    scanned; then the toggle. A walk-in's first scan starts again with the activity to itself
    (nothing was written). The unique (activity, user) index is the last word if two first scans
    of one person still race."""
    try:
        return _attempt(find, now, method=method, operator=operator, exclusive=False)
    except _Exclusive:
        return _attempt(find, now, method=method, operator=operator, exclusive=True)


def _attempt(find, now: datetime, *, method: str, operator: User | None, exclusive: bool) -> tuple[Attendance, str]:
    who: User | None = None
    activity: Activity | None = None
    try:
        with unit_of_work() as session:
            activity, who = find(session, exclusive)
            return _toggle(session, activity, who, now, method=method, operator=operator, exclusive=exclusive)
    except IntegrityError:
        db.session.rollback()
        if activity is None or who is None:
            raise
        row = db.session.scalar(
            sa.select(Attendance).where(Attendance.activity_id == activity.id, Attendance.user_id == who.id)
        )
        if row is None:
            raise
        return row, "check_in"


def _toggle(
    session, activity: Activity, user: User, now: datetime, *, method: str, operator: User | None, exclusive: bool
):
    row = _row(session, activity.id, user.id)
    if row is not None:
        _link(row, activity, user)
    if row is None:
        _signed_up(session, activity, user, now, exclusive)
        awards.hold(session, user.id)  # orders this person's check-ins across activities
        _not_elsewhere(session, activity, user)
        row = Attendance(
            activity_id=activity.id,
            user_id=user.id,
            checked_in_at=now,
            scanned_in_at=now,
            status="open",
            method_in=method,
            operator_id=getattr(operator, "id", None),
            updated_at=now,
        )
        _link(row, activity, user)
        session.add(row)
        session.flush()
        return _scanned(row, "check_in", activity, method, operator or user, now)
    if now - row.updated_at < DEBOUNCE:
        return row, "check_in" if row.status == "open" else "check_out"
    if row.status != "open":
        raise Conflict("already_checked_out")
    # Settle first, change the row after: its one UPDATE then goes out with the commit.
    _settle(session, row, now, actor_id=getattr(operator, "id", None), checked_out_at=now)
    row.checked_out_at, row.scanned_out_at, row.method_out = now, now, method
    row.status, row.updated_at = "closed", now
    row.scanned_minutes, row.scanned_points = row.credited_minutes, row.points
    return _scanned(row, "check_out", activity, method, operator or user, now)


def _link(row: Attendance, activity: Activity, user: User) -> None:
    """Tie the row to the activity and person this use case already holds, so that the rules, the
    archive text and the response read them from memory instead of loading them again."""
    set_committed_value(row, "activity", activity)
    set_committed_value(row, "user", user)


def _row(session, activity_id: int, user_id: int) -> Attendance | None:
    """One volunteer's attendance, locked. Every writer takes the activity's lock first, then this
    row, then the person's account: one order, so two of them never wait on each other in a cycle."""
    return session.scalar(
        sa.select(Attendance)
        .where(Attendance.activity_id == activity_id, Attendance.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


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


def _rule(activity: Activity) -> Rule:
    return policies.rule_for(
        db.session, activity.region, activity.category, {"points_per_hour": activity.points_per_hour}
    )


def _credit_for(session, row: Attendance, check_in: datetime | None, check_out: datetime | None, rule: Rule) -> Credit:
    """What [check_in, check_out] earns at this activity, given what the person was already credited
    that local day (the daily cap) and at the same time elsewhere (never twice). Call it after
    `awards.hold` has locked the person's account."""
    activity = row.activity
    if check_in is None or check_out is None:
        check_in = check_out = activity.starts_at
    start, end = clock.bounds_of(check_in)
    # One read for both: the settled attendances of that local day (the cap) and those overlapping
    # this one (time credited elsewhere never counts twice).
    others = session.execute(
        sa.select(
            Attendance.checked_in_at,
            Attendance.checked_out_at,
            Attendance.credited_minutes,
            Activity.starts_at,
            Activity.ends_at,
        )
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(
            Attendance.user_id == row.user_id,
            Attendance.id != row.id,
            Attendance.status.in_(SETTLED),
            Attendance.credited_minutes > 0,
            sa.or_(
                sa.and_(Attendance.checked_in_at >= start, Attendance.checked_in_at < end),
                sa.and_(Attendance.checked_in_at < check_out, Attendance.checked_out_at > check_in),
            ),
        )
    ).all()
    already = sum(minutes for came, _went, minutes, _s, _e in others if start <= came < end)
    # What another attendance credited lies inside its own activity's window: only that is taken.
    spans = [
        (max(came, starts), min(went, ends))
        for came, went, _minutes, starts, ends in others
        if came < check_out and went > check_in
    ]
    return credit(check_in, check_out, activity.starts_at, activity.ends_at, rule, already or 0, spans)


def _settle(
    session,
    row: Attendance,
    now: datetime,
    *,
    actor_id: int | None,
    makeup: bool = False,
    checked_out_at: datetime | None = None,
) -> None:
    """Credit the attendance's time through the points rule and ledger (in the caller's unit),
    until `checked_out_at` (a check-out being scanned) or the row's own check-out.

    With `makeup` (an approved make-up), the minutes the scans earned and the minutes added by
    hand are credited apart, the latter marked manual on the archive and the certificate."""
    activity = row.activity
    awards.hold(session, row.user_id)
    rule = _rule(activity)
    total = _credit_for(session, row, row.checked_in_at, checked_out_at or row.checked_out_at, rule)
    scanned = total
    if makeup:
        # The part the scans earned (as settled then); everything above it is the make-up.
        scanned = dataclasses.replace(
            total,
            credited_minutes=min(row.scanned_minutes, total.credited_minutes),
            points=min(row.scanned_points, total.points),
        )
    key = f"attendance:{row.id}:{row.version}"
    place = {
        "title": activity.title,
        "category": activity.category,
        "organizer": activity.department.name,
        "place": activity.address,
        "date": activity.starts_at.isoformat(),
        "activity_id": activity.id,
    }
    common = {"user_id": row.user_id, "department_id": activity.department_id, "now": now, "actor_id": actor_id}
    if not makeup or scanned.credited_minutes > 0:
        awards.credit_service(credit=scanned, key=key, cause=("attendance", row.id), activity=place, **common)
    extra_minutes = total.credited_minutes - scanned.credited_minutes
    if makeup and extra_minutes > 0:
        added = dataclasses.replace(total, credited_minutes=extra_minutes, points=total.points - scanned.points)
        awards.credit_service(
            credit=added, key=f"{key}:makeup", cause=("attendance", row.id), activity=place, manual=True, **common
        )
    row.credited_minutes, row.points, row.credit_key = total.credited_minutes, total.points, key
    row.makeup_minutes = extra_minutes if makeup else 0
    row.manual = bool(row.makeup_minutes)


def _unsettle(row: Attendance, reason: str, now: datetime, actor_id: int | None) -> None:
    """Reverse every credit of the attendance in full (a debt where the points were spent)."""
    if row.credit_key:
        for key in (row.credit_key, f"{row.credit_key}:makeup"):
            awards.reverse_service(key=key, new_key=f"{key}:reversed", reason=reason, now=now, actor_id=actor_id)
    row.credited_minutes, row.points, row.makeup_minutes, row.credit_key = 0, 0, 0, None
    row.version += 1


def _snapshot(row: Attendance) -> dict:
    return {
        "checked_in_at": row.checked_in_at,
        "checked_out_at": row.checked_out_at,
        "status": row.status,
        "credited_minutes": row.credited_minutes,
        "points": row.points,
        "review": row.review,
    }


def _check_times(
    activity: Activity, checked_in_at: datetime | None, checked_out_at: datetime | None, now: datetime
) -> None:
    if checked_in_at is None or checked_out_at is None:
        raise Invalid("times_invalid", errors={"checked_in_at": ["请填写签到和签退时间"]})
    if checked_out_at < checked_in_at:
        raise Invalid("times_invalid", errors={"checked_out_at": ["签退须晚于签到"]})
    if max(checked_in_at, checked_out_at) > now + timedelta(minutes=5):
        raise Invalid("times_in_future", errors={"checked_out_at": ["签到、签退时间不能在将来"]})
    if checked_in_at < activity.starts_at - NEAR or checked_out_at > activity.ends_at + NEAR:
        raise Invalid("times_invalid", errors={"checked_in_at": ["签到、签退须在活动当天前后"]})


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
    """Back-fill or correct one volunteer's times, with a mandatory reason.

    Minutes no more than the scans earned apply at once (points re-settled by reversal and
    re-credit), as does lowering an approved make-up. More minutes than the scans earned are a
    make-up: the proposal waits (`review: pending`) and posts nothing until `approve`."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写补录或更正的原因"]})
    with unit_of_work() as session:
        activity = activities.organized(actor, activity_id, lock=True)
        if activity.status not in ("published", "finished", "closed"):
            raise Conflict("activity_state")  # a cancelled (or draft) activity has no attendance
        _check_times(activity, checked_in_at, checked_out_at, now)
        volunteer = session.get(User, user_id)
        if volunteer is None:
            raise Invalid("volunteer_not_signed_up", errors={"user_id": [message("volunteer_not_signed_up")]})
        duties.require_not_beneficiary(actor, volunteer)
        row = _row(session, activity.id, user_id)
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
                checked_out_at=checked_out_at,
                method_in="manual",
                method_out="manual",
                status="closed",
                updated_at=now,
            )
            session.add(row)
            session.flush()
        else:
            # An annulled attendance may be restored: up to what its scans earned at once, beyond
            # that as a make-up for review, like any other correction.
            before = _snapshot(row)
        awards.hold(session, user_id)
        rule = _rule(activity)
        proposed = _credit_for(session, row, checked_in_at, checked_out_at, rule)
        # More than the scans earned, in minutes or in points (a raised rate, a wider window, a cap
        # escaped by filing the minutes under another day), is a make-up.
        makeup = proposed.credited_minutes > row.scanned_minutes or proposed.points > row.scanned_points
        lowers_approved = (
            row.review == "approved"
            and proposed.credited_minutes <= row.credited_minutes
            and proposed.points <= row.points
        )
        row.operator_id, row.updated_at = actor.id, now
        if makeup and not lowers_approved:
            _propose(row, checked_in_at, checked_out_at, reason, actor)
        else:
            _unsettle(row, reason, now, actor.id)
            row.checked_in_at, row.checked_out_at = checked_in_at, checked_out_at
            row.status, row.method_out = "closed", "manual"
            row.review = "approved" if makeup else None
            row.proposed_in_at = row.proposed_out_at = None
            _settle(session, row, now, actor_id=actor.id, makeup=makeup)
        _record_correction(session, row, before, reason, actor, activity, now, "attendance.correct")
    return row


def _propose(row: Attendance, checked_in_at: datetime, checked_out_at: datetime, reason: str, actor: User) -> None:
    """Hold a make-up for review; what is credited now stays as it is until a reviewer decides."""
    # Nothing else changes until a reviewer decides: an open row stays open (the volunteer can still
    # scan out), an auto-closed one stays as the job left it.
    # reviewed_by/at keep naming who approved the make-up credited now, if any, until a decision.
    row.review, row.proposed_in_at, row.proposed_out_at = "pending", checked_in_at, checked_out_at
    row.review_reason, row.recorded_by_id = reason[:255], actor.id


def _record_correction(session, row, before, reason, actor, activity, now, action) -> None:
    after = _snapshot(row)
    if row.review == "pending":
        after.update(proposed_in_at=row.proposed_in_at, proposed_out_at=row.proposed_out_at)
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
        action,
        "attendance",
        row.id,
        actor=actor,
        before=before,
        after=after,
        region_id=activity.region_id,
        now=now,
    )


def _reviewable(session, actor: User, activity_id: int, user_id: int) -> tuple[Activity, Attendance]:
    """A pending make-up that `actor` may decide: a reviewer (or admin) of the activity's region,
    neither the person who recorded it nor the volunteer (nor their household)."""
    authorize(actor, REVIEWERS)
    activity = session.get(Activity, activity_id, with_for_update=True, populate_existing=True)
    if activity is None:
        raise NotFound("activity_not_found")
    authorize(actor, REVIEWERS, activity.region, hide=True)
    row = _row(session, activity.id, user_id)
    if row is None:
        raise NotFound()
    if row.review != "pending":
        raise Conflict("not_pending_review")
    duties.require_distinct(row.recorded_by_id, actor.id)
    duties.require_not_beneficiary(actor, row.user)
    return activity, row


def approve(*, actor: User, activity_id: int, user_id: int, now: datetime, note: str | None = None) -> Attendance:
    """A second person approves a make-up: the attendance is re-settled with the proposed times,
    the scanned and the added minutes credited apart."""
    with unit_of_work() as session:
        activity, row = _reviewable(session, actor, activity_id, user_id)
        before = _snapshot(row)
        _unsettle(row, "补录审核通过，重新结算", now, actor.id)
        row.checked_in_at, row.checked_out_at = row.proposed_in_at, row.proposed_out_at
        row.status, row.method_out, row.updated_at = "closed", row.method_out or "manual", now
        row.review, row.reviewed_by_id, row.reviewed_at = "approved", actor.id, now
        row.review_note = (note or "").strip()[:255] or None
        row.proposed_in_at = row.proposed_out_at = None
        _settle(session, row, now, actor_id=actor.id, makeup=True)
        _record_correction(session, row, before, row.review_reason or "", actor, activity, now, "attendance.approve")
    return row


def reject(*, actor: User, activity_id: int, user_id: int, reason: str, now: datetime) -> Attendance:
    """A second person rejects a make-up: nothing moves; what was credited stays."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写驳回原因"]})
    with unit_of_work() as session:
        activity, row = _reviewable(session, actor, activity_id, user_id)
        before = _snapshot(row)
        if row.makeup_minutes:
            # What is credited is an earlier, approved make-up: it stands; only the proposal goes.
            row.review, row.review_note = "approved", reason[:255]
        else:
            row.review, row.reviewed_by_id, row.reviewed_at = "rejected", actor.id, now
            row.review_note = reason[:255]
        row.proposed_in_at = row.proposed_out_at = None
        row.updated_at = now
        _record_correction(session, row, before, reason, actor, activity, now, "attendance.reject")
    return row


def annul(*, actor: User, activity_id: int, user_id: int, reason: str, now: datetime) -> Attendance:
    """Annul a wrong check-in: its points are reversed; the row stays, marked annulled."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写原因"]})
    with unit_of_work() as session:
        activity, row = _organized_row(session, actor, activity_id, user_id)
        if row.status == "annulled":
            raise Conflict("attendance_annulled")
        _unsettle(row, reason, now, actor.id)
        row.status, row.updated_at = "annulled", now
        if row.review == "pending":  # a make-up for an annulled attendance has nothing to add to
            row.review, row.proposed_in_at, row.proposed_out_at = None, None, None
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
    activity = activities.organized(actor, activity_id, lock=True)
    row = _row(session, activity.id, user_id)
    if row is None:
        raise NotFound()
    return activity, row


def confirm(
    *, actor: User, activity_id: int, user_id: int, now: datetime, checked_out_at: datetime | None = None
) -> Attendance:
    """The organizer confirms a check-out the job closed at the activity's end ('auto'). Nothing
    was credited beyond the scans, so the confirmed time is a make-up: it waits for a reviewer."""
    with unit_of_work() as session:
        _activity, row = _organized_row(session, actor, activity_id, user_id)
        if row.status != "auto":
            raise Conflict("not_auto_closed")
        if row.review == "pending":
            raise Conflict("makeup_pending")
        checked_in_at, out = row.checked_in_at, checked_out_at or row.checked_out_at
        return correct(
            actor=actor,
            activity_id=activity_id,
            user_id=user_id,
            checked_in_at=checked_in_at,
            checked_out_at=out,
            reason="确认系统自动签退的时间",
            now=now,
        )


def close_missed_checkouts(*, now: datetime) -> int:
    """At an activity's end (plus grace), close open attendances at the end time, marked 'auto'.
    Only a check-in was scanned, so nothing is credited: the organizer confirms the time as a
    make-up, which a reviewer approves (the four-eyes rule)."""
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
            audit.record(
                "attendance.auto_close",
                "attendance",
                row.id,
                after={"checked_out_at": row.checked_out_at, "credited_minutes": 0},
                region_id=row.activity.region_id,
                now=now,
            )
    return len(due)


def _plain(value):
    if value is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in value.items()}
