"""Sign-ups: confirmed, waitlisted, pending approval, rejected, cancelled. The activity row is
locked while places are counted, so concurrent sign-ups never exceed the capacity; a cancellation
promotes the first on the waitlist.

A resident without a phone is signed up on their behalf (代报名, `sign_up_for`) by an organizer of
the activity or the grid worker of their grid, never by themselves or their household: the sign-up
carries `proxy_by`, and the resident is told who did it."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from community.models import User
from core import audit
from core.db import batch_size, db, keyset_pages, unit_of_work
from core.errors import Conflict, NotFound
from core.notify import queue
from core.security import authorize, covers
from points import duties
from volunteer import activities, notices
from volunteer.models import Activity, Signup

TAKES_A_PLACE = ("confirmed",)
# Who signs a resident up on their behalf: an organizer of the activity, the grid worker of their grid.
PROXIES = ("organizer", "grid_worker")


def _has_place(activity: Activity) -> bool:
    if activity.capacity is None:
        return True
    taken = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Signup)
        .where(Signup.activity_id == activity.id, Signup.status.in_(TAKES_A_PLACE))
    )
    return taken < activity.capacity


def sign_up(*, user: User, activity_id: int, now: datetime, walk_in: bool = False, proxy: User | None = None) -> Signup:
    """Sign `user` up (`proxy`: the organizer whose kiosk signed a walk-in up by their card)."""
    with unit_of_work() as session:
        activity = activities.get(activity_id, lock=True)
        return _sign_up(session, activity, user, now, walk_in=walk_in, proxy=proxy)


def sign_up_for(*, actor: User, activity_id: int, user_id: int, now: datetime) -> Signup:
    """代报名: `actor` signs up a resident who has no phone; the resident is told who did it."""
    authorize(actor, PROXIES)
    with unit_of_work() as session:
        activity = activities.get(activity_id, viewer=actor, lock=True)
        resident = proxied_resident(actor, user_id, activity)
        return _sign_up(session, activity, resident, now, proxy=actor)


def proxied_resident(actor: User, user_id: int, activity: Activity) -> User:
    """The resident `actor` may act for at `activity`: one in the area of the activity's department
    when `actor` organizes it, or one of the grid `actor` works for. Anyone else, unknown or out of
    reach alike, is 404; their own or their household's sign-up is 403 `self_dealing`."""
    resident = db.session.get(User, user_id)
    if resident is None or not resident.active or not reaches(actor, resident, activity):
        raise NotFound("not_a_resident", "找不到该居民，或您不能为其代办")
    duties.require_not_beneficiary(actor, resident)
    return resident


def reaches(actor: User, resident: User, activity: Activity) -> bool:
    """Whether `actor` may act for `resident` at `activity`: their grid worker, or an organizer of the
    activity when the resident lives in its department's area."""
    if covers(actor, "grid_worker", resident):
        return True
    return covers(actor, "organizer", activity) and activity.department.region.contains(resident.region)


def _sign_up(
    session, activity: Activity, user: User, now: datetime, *, walk_in: bool = False, proxy: User | None = None
) -> Signup:
    if activity.status != "published":
        raise Conflict("activity_not_open")
    deadline = activity.signup_deadline or activity.ends_at
    if now > deadline and not walk_in:
        raise Conflict("signup_closed")
    existing = session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id, Signup.user_id == user.id))
    if existing is not None and existing.status != "cancelled":
        raise Conflict("already_signed_up")
    if activity.requires_approval and not walk_in:
        status = "pending"
    else:
        status = "confirmed" if _has_place(activity) else "waitlisted"
    signup = existing or Signup(activity_id=activity.id, user_id=user.id, created_at=now)
    signup.status, signup.updated_at, signup.walk_in = status, now, walk_in
    signup.proxy_by_id = proxy.id if proxy is not None else None
    if existing is not None:
        signup.created_at = now  # back of the queue
    session.add(signup)
    session.flush()
    audit.record(
        "signup.create",
        "signup",
        signup.id,
        actor=proxy or user,
        after={
            "activity_id": activity.id,
            "user_id": user.id,
            "status": status,
            "walk_in": walk_in,
            "proxy_by": signup.proxy_by_id,
        },
        region_id=activity.region_id,
        now=now,
    )
    if not walk_in:  # a walk-in learns it from the check-in itself
        notices.signed_up(session, signup, activity, proxy=proxy, now=now)
    return signup


def cancel(*, user: User, activity_id: int, now: datetime) -> Signup:
    with unit_of_work() as session:
        activity = activities.get(activity_id, lock=True)
        signup = session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id, Signup.user_id == user.id))
        if signup is None or signup.status == "cancelled":
            raise NotFound("not_signed_up")
        if now >= activity.starts_at:
            raise Conflict("too_late_to_cancel")
        freed = signup.status == "confirmed"
        signup.status, signup.updated_at = "cancelled", now
        audit.record(
            "signup.cancel",
            "signup",
            signup.id,
            actor=user,
            after={"status": "cancelled"},
            region_id=activity.region_id,
            now=now,
        )
        if freed:
            promote(activity, now)
    return signup


def promote(activity: Activity, now: datetime) -> Signup | None:
    """Give a freed place to the first on the waitlist (in sign-up order) and tell them."""
    if not _has_place(activity):
        return None
    first = db.session.scalar(
        sa.select(Signup)
        .where(Signup.activity_id == activity.id, Signup.status == "waitlisted")
        .order_by(Signup.created_at, Signup.id)
        .limit(1)
    )
    if first is None:
        return None
    first.status, first.updated_at = "confirmed", now
    queue(
        db.session,
        user_id=first.user_id,
        kind="waitlist",
        title="候补成功",
        body=f"您已从候补转为正式报名：「{activity.title}」。",
        key=f"promoted:{first.id}:{now.isoformat()}",
        now=now,
    )
    audit.record(
        "signup.promote", "signup", first.id, after={"status": "confirmed"}, region_id=activity.region_id, now=now
    )
    return first


def decide(*, actor: User, activity_id: int, signup_id: int, approve: bool, now: datetime) -> Signup:
    """The organizer approves (a place if there is one, else the waitlist) or rejects a sign-up."""
    with unit_of_work() as session:
        activity = activities.organized(actor, activity_id, lock=True)
        signup = session.get(Signup, signup_id)
        if signup is None or signup.activity_id != activity.id:
            raise NotFound()
        if signup.status not in ("pending", "waitlisted"):
            raise Conflict("activity_state")
        if approve:
            signup.status = "confirmed" if _has_place(activity) else "waitlisted"
            title, body = "报名已通过", f"您报名的「{activity.title}」已通过审核。"
        else:
            signup.status = "rejected"
            title, body = "报名未通过", f"很抱歉，您报名的「{activity.title}」未通过审核。"
        signup.updated_at = now
        queue(
            session,
            user_id=signup.user_id,
            kind="signup",
            title=title,
            body=body,
            key=f"decided:{signup.id}:{signup.status}",
            now=now,
        )
        audit.record(
            "signup.decide",
            "signup",
            signup.id,
            actor=actor,
            after={"status": signup.status},
            region_id=activity.region_id,
            now=now,
        )
    return signup


REMINDERS = (("hour", timedelta(0), timedelta(hours=1)), ("day", timedelta(hours=1), timedelta(days=1)))


def queue_reminders(*, now: datetime, size: int | None = None) -> int:
    """Tell each confirmed volunteer once when their activity is less than a day away, and once
    more when it is less than an hour away (only the hour's reminder if they signed up that late).
    Sign-ups are read a page of `size` at a time (keyset by id), each page queued in its own unit
    of work: a city's busy Saturday passes in bounded memory."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    queued = 0
    for label, nearer, farther in REMINDERS:
        due = (
            sa.select(Signup.id, Signup.user_id, Activity.id, Activity.title, Activity.starts_at, Activity.address)
            .join(Activity)
            .where(
                Signup.status == "confirmed",
                Activity.status == "published",
                Activity.starts_at > now + nearer,
                Activity.starts_at <= now + farther,
            )
        )
        for page in keyset_pages(db.session, due, Signup.id, size=size or batch_size()):
            with unit_of_work() as session:
                for _signup_id, user_id, activity_id, title, starts_at, address in page:
                    when = starts_at.astimezone(zone).strftime("%m月%d日 %H:%M")
                    queue(
                        session,
                        user_id=user_id,
                        kind="reminder",
                        title=f"活动提醒：{title}",
                        body=f"您报名的「{title}」将于 {when} 开始，地点：{address}。请准时到场扫码签到。",
                        key=f"remind:{label}:{activity_id}:{user_id}",
                        now=now,
                    )
            queued += len(page)
    return queued


def attendance_rate(user_id: int) -> float | None:
    """Share of finished activities the volunteer came to (None before any)."""
    rows = db.session.execute(
        sa.select(Signup.no_show, sa.func.count())
        .join(Activity)
        .where(Signup.user_id == user_id, Signup.status == "confirmed", Activity.status.in_(("finished", "closed")))
        .group_by(Signup.no_show)
    ).all()
    counts = dict(rows)
    total = sum(counts.values())
    return None if not total else round(counts.get(False, 0) / total, 3)
