"""Activities: create, edit, publish, cancel, finish, close. Organizers act only for their own
department (or region); everything is audited; volunteers are told of a cancellation."""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa

from community import services as community_services
from community.models import Department, User
from core import audit, clock
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.notify import queue
from core.security import authorize, covers
from volunteer.messages import MESSAGES
from volunteer.models import CATEGORIES, Activity, Attendance, Signup

EDITABLE = (
    "title",
    "description",
    "category",
    "address",
    "starts_at",
    "ends_at",
    "signup_deadline",
    "capacity",
    "requires_approval",
    "allow_walk_in",
    "points_per_hour",
    "latitude",
    "longitude",
    "radius_m",
)


def get(activity_id: int, *, viewer: User | None = None, lock: bool = False) -> Activity:
    """An activity the viewer may see: drafts only for its organizers."""
    activity = db.session.get(Activity, activity_id, with_for_update=lock or None, populate_existing=lock)
    if activity is None or (activity.status == "draft" and not covers(viewer, "organizer", activity)):
        raise NotFound("activity_not_found")
    return activity


def _check(values: dict) -> None:
    errors: dict[str, list[str]] = {}
    if "title" in values and not (values["title"] or "").strip():
        errors["title"] = ["请填写活动名称"]
    if "category" in values and values["category"] not in CATEGORIES:
        errors["category"] = ["类别须为：" + "、".join(CATEGORIES)]
    start, end = values.get("starts_at"), values.get("ends_at")
    if start and end and end <= start:
        errors["ends_at"] = ["结束时间须晚于开始时间"]
    if start and end and (end - start).total_seconds() > 3 * 24 * 3600:
        errors["ends_at"] = ["单次活动不能超过 3 天"]
    deadline = values.get("signup_deadline")
    if deadline and end and deadline > end:
        errors["signup_deadline"] = ["报名截止须早于活动结束"]
    if values.get("capacity") is not None and values["capacity"] <= 0:
        errors["capacity"] = ["人数上限须为正整数"]
    if values.get("points_per_hour") is not None and not 0 <= values["points_per_hour"] <= 100:
        errors["points_per_hour"] = ["每小时积分须在 0–100 之间"]
    if errors:
        raise Invalid(errors=errors)


def create(*, actor: User, department_id: int, region_code: str, now: datetime, **values) -> Activity:
    _check(values)
    with unit_of_work() as session:
        authorize(actor, "organizer")
        department = session.get(Department, department_id)
        if department is None:
            raise Invalid(errors={"department_id": ["找不到该部门"]})
        authorize(actor, "organizer", department)
        region = community_services.require_region(region_code)
        # The place must lie in the department's own area. The organizer's grant covers the
        # department (or a region above it), so this also keeps the activity inside their scope:
        # nobody files an activity, and its points, under a village they do not serve.
        if not department.region.contains(region):
            raise Invalid("region_outside_department", errors={"region_code": [MESSAGES["region_outside_department"]]})
        activity = Activity(
            department_id=department.id,
            region_id=region.id,
            status="draft",
            secret=secrets.token_hex(16),
            created_by_id=actor.id,
            created_at=now,
            **{k: v for k, v in values.items() if k in EDITABLE},
        )
        activity.title = activity.title.strip()
        session.add(activity)
        session.flush()
        audit.record(
            "activity.create",
            "activity",
            activity.id,
            actor=actor,
            after={k: values.get(k) for k in ("title", "starts_at", "ends_at", "capacity")},
            region_id=region.id,
            now=now,
        )
    return activity


def update(*, actor: User, activity_id: int, now: datetime, **values) -> Activity:
    with unit_of_work() as session:
        activity = organized(actor, activity_id, lock=True)
        if activity.status not in ("draft", "published"):
            raise Conflict("activity_state")
        changed = {k for k, v in values.items() if k in SETTLING and getattr(activity, k) != v}
        if changed and _has_attendance(activity):
            # What the scans earned was settled under these; changing them afterwards would let a
            # correction re-credit more than anyone reviewed.
            raise Conflict("activity_settled", errors={k: [MESSAGES["activity_settled"]] for k in sorted(changed)})
        merged = {k: getattr(activity, k) for k in EDITABLE} | {k: v for k, v in values.items() if k in EDITABLE}
        _check(merged)
        before = {k: getattr(activity, k) for k in values if k in EDITABLE}
        for key, value in values.items():
            if key in EDITABLE:
                setattr(activity, key, value)
        entry = audit.record(
            "activity.update",
            "activity",
            activity.id,
            actor=actor,
            before=before,
            after={k: v for k, v in values.items() if k in EDITABLE},
            region_id=activity.region_id,
            now=now,
        )
        session.flush()
        moved = [k for k in WHEN_AND_WHERE if k in before and before[k] != values[k]]
        if activity.status == "published" and moved:
            # In the same unit of work as the change: volunteers hear of every change that commits.
            _tell_signed_up(activity, now, "活动变更", _change_notice(activity, moved), key=f"changed:{entry.id}")
    return activity


# What volunteers who signed up must hear about when it changes: when and where to be.
WHEN_AND_WHERE = ("starts_at", "ends_at", "address", "latitude", "longitude")


def _change_notice(activity: Activity, moved: list[str]) -> str:
    parts = []
    if "starts_at" in moved or "ends_at" in moved:
        start, end = clock.local(activity.starts_at), clock.local(activity.ends_at)
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end.month}月{end.day}日 {end:%H:%M}"
        parts.append(f"时间改为 {start.year}年{start.month}月{start.day}日 {start:%H:%M}–{until}")
    if {"address", "latitude", "longitude"} & set(moved):
        parts.append(f"地点改为 {activity.address}")
    return f"您报名的活动「{activity.title}」{'；'.join(parts)}。如不能参加，请在活动开始前取消报名。"


SETTLING = ("starts_at", "ends_at", "points_per_hour", "category")


def organized(actor: User, activity_id: int, *, lock: bool = False) -> Activity:
    """An activity `actor` organizes: the role, and a scope over its department or region. One who
    organizes elsewhere gets 404 (not even its existence is told); one who organizes nothing, 403."""
    authorize(actor, "organizer")
    activity = db.session.get(Activity, activity_id, with_for_update=lock or None, populate_existing=lock)
    if activity is None:
        raise NotFound("activity_not_found")
    authorize(actor, "organizer", activity, hide=True)
    return activity


def organizer_departments(user: User | None) -> set[int]:
    """The departments whose activities `user` organizes (their drafts included)."""
    return {i for t, i in (user.grant_keys("organizer") if user else set()) if t == "department"}


def _transition(actor: User, activity_id: int, now: datetime, allowed: tuple[str, ...], to: str) -> Activity:
    with unit_of_work():
        activity = organized(actor, activity_id, lock=True)
        if activity.status not in allowed:
            raise Conflict("activity_state")
        if to == "cancelled" and _has_attendance(activity):
            # Cancelling never keeps credits for time nobody will vouch for: the organizer annuls
            # each attendance first (its points reversed in full), then cancels.
            raise Conflict("activity_has_attendance")
        before = activity.status
        activity.status = to
        audit.record(
            f"activity.{to}",
            "activity",
            activity.id,
            actor=actor,
            before={"status": before},
            after={"status": to},
            region_id=activity.region_id,
            now=now,
        )
        if to == "cancelled":
            _tell_signed_up(activity, now, "活动取消", f"您报名的活动「{activity.title}」已取消。")
        if to == "finished":
            _mark_no_shows(activity, now)
    return activity


def has_attendance(activity: Activity) -> bool:
    """True once anyone checked in (an annulled check-in does not count)."""
    return _has_attendance(activity)


def _has_attendance(activity: Activity) -> bool:
    return (
        db.session.scalar(
            sa.select(Attendance.id)
            .where(Attendance.activity_id == activity.id, Attendance.status != "annulled")
            .limit(1)
        )
        is not None
    )


def publish(*, actor: User, activity_id: int, now: datetime) -> Activity:
    return _transition(actor, activity_id, now, ("draft",), "published")


def cancel(*, actor: User, activity_id: int, now: datetime) -> Activity:
    return _transition(actor, activity_id, now, ("draft", "published"), "cancelled")


def finish(*, actor: User, activity_id: int, now: datetime) -> Activity:
    return _transition(actor, activity_id, now, ("published",), "finished")


def close(*, actor: User, activity_id: int, now: datetime) -> Activity:
    return _transition(actor, activity_id, now, ("finished",), "closed")


def _tell_signed_up(activity: Activity, now: datetime, title: str, body: str, *, key: str | None = None) -> None:
    """Queue a notice to everyone signed up (waitlisted and pending too); once per `key` (default:
    the title, for what happens once, like a cancellation) and person."""
    users = db.session.scalars(
        sa.select(Signup.user_id).where(
            Signup.activity_id == activity.id, Signup.status.in_(("confirmed", "waitlisted", "pending"))
        )
    ).all()
    for user_id in users:
        queue(
            db.session,
            user_id=user_id,
            kind="activity",
            title=title,
            body=body,
            key=f"activity:{activity.id}:{key or title}:{user_id}",
            now=now,
        )


def _mark_no_shows(activity: Activity, now: datetime) -> None:
    present = sa.select(Attendance.user_id).where(
        Attendance.activity_id == activity.id, Attendance.status != "annulled"
    )
    db.session.execute(
        sa.update(Signup)
        .where(Signup.activity_id == activity.id, Signup.status == "confirmed", Signup.user_id.not_in(present))
        .values(no_show=True, updated_at=now)
    )


def browse(
    viewer: User | None,
    *,
    status: str | None = None,
    region_code: str | None = None,
    category: str | None = None,
    ends_after: datetime | None = None,
    starts_before: datetime | None = None,
    text: str | None = None,
) -> sa.Select:
    """The activities anyone may browse, filtered (unordered). Drafts only when asked for, and only
    those of the viewer's own departments; otherwise every activity but drafts."""
    select = sa.select(Activity)
    if status == "draft":
        select = select.where(Activity.status == "draft", Activity.department_id.in_(organizer_departments(viewer)))
    elif status:
        select = select.where(Activity.status == status)
    else:
        select = select.where(Activity.status != "draft")
    if region_code:
        root = community_services.region_by_code(region_code)
        select = select.where(Activity.region_id.in_(community_services.region_ids_in(root) if root else []))
    if category:
        select = select.where(Activity.category == category)
    if ends_after:
        select = select.where(Activity.ends_at >= ends_after)
    if starts_before:
        select = select.where(Activity.starts_at <= starts_before)
    if text:
        select = select.where(
            sa.or_(Activity.title.contains(text, autoescape=True), Activity.address.contains(text, autoescape=True))
        )
    return select


def counts_for(activity_ids: list[int]) -> dict[int, dict[str, int]]:
    """Sign-up counts of several activities in one query: signed up (confirmed), waitlisted, pending."""
    found: dict[int, dict[str, int]] = {i: {"signed_up": 0, "waitlisted": 0, "pending": 0} for i in activity_ids}
    names = {"confirmed": "signed_up", "waitlisted": "waitlisted", "pending": "pending"}
    rows = db.session.execute(
        sa.select(Signup.activity_id, Signup.status, sa.func.count())
        .where(Signup.activity_id.in_(activity_ids), Signup.status.in_(names))
        .group_by(Signup.activity_id, Signup.status)
    ).all()
    for activity_id, status, n in rows:
        found[activity_id][names[status]] = n
    return found


def counts(activity_id: int) -> dict[str, int]:
    return counts_for([activity_id])[activity_id]
