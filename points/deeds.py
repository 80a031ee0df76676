"""Deeds and deductions (好人好事 / 违规扣分): recorded by a grid worker, reviewed by someone else,
shown on the public notice (公示) for the region's notice days, then posted to the ledger by a
scheduled job unless a reviewer voided them during the notice. An objection raised during the
notice holds the deed until a reviewer resolves it: upheld, the deed is rejected; dismissed, it
posts. Nobody records, reviews or resolves a deed of their own or of their household
(`points.duties`). A deduction takes only what the balance holds; the rest is recorded as unpaid
(DESIGN §3), and it never touches any other right (§8). Points move only in `_book`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community import pii
from community.models import User
from core import audit, clock, uploads
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.security import authorize, covers
from points import awards, catalogue, duties, policies
from points.models import Deed, DeedObjection, DeedType, fits_id

log = logging.getLogger(__name__)

# The catalogue (what may be recorded, at what points) is `points.catalogue`.
types_for = catalogue.types_for


def record(
    *,
    actor: User,
    resident_id: int,
    deed_type: str,
    description: str,
    occurred_on: date,
    now: datetime,
    photo: bytes | None = None,
) -> Deed:
    """A grid worker records a deed for a resident of their grid; it waits for review. An optional
    photo (the picture's bytes) is checked, stripped of its metadata and kept with the deed."""
    description = (description or "").strip()
    errors: dict[str, list[str]] = {}
    if not description:
        errors["description"] = ["请描述事迹或违规情况"]
    today = clock.today(now)
    if occurred_on > today:
        errors["occurred_on"] = ["发生日期不能晚于今天"]
    elif occurred_on < today - timedelta(days=366):
        errors["occurred_on"] = ["发生日期须在一年之内"]
    if errors:
        raise Invalid(errors=errors)
    with unit_of_work() as session:
        authorize(actor, "grid_worker")
        resident = session.get(User, resident_id) if fits_id(resident_id) else None
        if resident is None:
            raise Invalid("not_a_resident", errors={"resident_id": ["找不到该居民"]})
        authorize(actor, "grid_worker", resident)
        duties.require_not_beneficiary(actor, resident)
        kind = session.scalar(types_for(resident.region).where(DeedType.code == deed_type))
        if kind is None:
            raise Invalid("deed_type_unknown", errors={"deed_type": ["找不到该事迹类型"]})
        photo_key = uploads.store(photo, purpose="deed", actor_id=actor.id, now=now) if photo else None
        deed = Deed(
            resident_id=resident.id,
            deed_type_id=kind.id,
            points=kind.points,
            description=description[:2000],
            occurred_on=occurred_on,
            photo=photo_key,
            status="pending",
            region_id=resident.region_id,
            recorded_by_id=actor.id,
            recorded_at=now,
        )
        session.add(deed)
        session.flush()
        audit.record(
            "deed.record",
            "deed",
            deed.id,
            actor=actor,
            after={"resident_id": resident.id, "type": kind.code, "points": kind.points, "photo": photo_key},
            region_id=resident.region_id,
            now=now,
        )
    return deed


REVIEWERS = duties.REVIEWERS


def photo_key(*, viewer: User, deed_id: int) -> str:
    """The key of a deed's photo, for those who may see it: the resident, and the grid workers,
    reviewers and admins over the deed. To anyone else the photo does not exist (404)."""
    deed = db.session.get(Deed, deed_id) if fits_id(deed_id) else None
    if deed is None or not deed.photo:
        raise NotFound("deed_not_found")
    if viewer.id == deed.resident_id or covers(viewer, ("grid_worker", *REVIEWERS), deed):
        return deed.photo
    raise NotFound("deed_not_found")


def _reviewable(session, actor: User, deed_id: int) -> Deed:
    """A deed the actor may review: reviewers and admins of its region (DESIGN §1)."""
    authorize(actor, REVIEWERS)
    deed = session.get(Deed, deed_id, populate_existing=True, with_for_update=True) if fits_id(deed_id) else None
    if deed is None:
        raise NotFound()
    authorize(actor, REVIEWERS, deed, hide=True)
    return deed


def approve(*, actor: User, deed_id: int, now: datetime, note: str | None = None) -> Deed:
    """A reviewer (never the recorder, never the resident or their household) approves: the deed
    goes on the public notice."""
    return _decide(actor, deed_id, now, note, approved=True)


def reject(*, actor: User, deed_id: int, now: datetime, note: str | None = None) -> Deed:
    return _decide(actor, deed_id, now, note, approved=False)


def _decide(actor: User, deed_id: int, now: datetime, note: str | None, *, approved: bool) -> Deed:
    with unit_of_work() as session:
        deed = _reviewable(session, actor, deed_id)
        duties.require_distinct(deed.recorded_by_id, actor.id)
        duties.require_not_beneficiary(actor, deed.resident)
        if deed.status != "pending":
            raise Conflict("deed_not_pending")
        deed.status = "approved" if approved else "rejected"
        deed.reviewed_by_id, deed.reviewed_at = actor.id, now
        deed.review_note = (note or "")[:255] or None
        if approved:
            deed.notice_until = now + timedelta(days=policies.policy_for(session, deed.region).notice_days)
        after = {"status": deed.status, "note": deed.review_note, "notice_until": deed.notice_until}
        audit.record(
            f"deed.{'approve' if approved else 'reject'}",
            "deed",
            deed.id,
            actor=actor,
            before={"status": "pending"},
            after=after,
            region_id=deed.region_id,
            now=now,
        )
    return deed


def void(*, actor: User, deed_id: int, reason: str, now: datetime) -> Deed:
    """While the notice runs a reviewer may void an approved deed, with a reason; nothing is posted.
    Once the notice has ended the deed posts, or waits for its objections to be resolved."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写作废原因"]})
    with unit_of_work() as session:
        deed = _reviewable(session, actor, deed_id)
        duties.require_not_beneficiary(actor, deed.resident)
        if not in_notice(deed, now):
            raise Conflict("deed_not_in_notice")
        deed.status, deed.review_note = "voided", reason[:255]
        audit.record(
            "deed.void",
            "deed",
            deed.id,
            actor=actor,
            before={"status": "approved"},
            after={"status": "voided", "reason": reason},
            region_id=deed.region_id,
            now=now,
        )
    return deed


def in_notice(deed: Deed, now: datetime) -> bool:
    return deed.status == "approved" and deed.notice_until is not None and now < deed.notice_until


PUBLIC_STATUSES = ("approved", "posted")


def object_to(*, actor: User, deed_id: int, reason: str, now: datetime) -> DeedObjection:
    """Any signed-in resident may object to a deed during its notice (异议); the deed then waits
    for a reviewer to resolve the objection instead of posting when the notice ends."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写异议内容"]})
    with unit_of_work() as session:
        # Locked: the posting job, which locks the deed too, sees the objection or posts first.
        deed = session.get(Deed, deed_id, populate_existing=True, with_for_update=True) if fits_id(deed_id) else None
        if deed is None or deed.status not in PUBLIC_STATUSES:
            raise NotFound("deed_not_found")
        if not in_notice(deed, now):
            raise Conflict("deed_not_in_notice")
        objection = DeedObjection(deed_id=deed.id, user_id=actor.id, text=reason[:500], created_at=now, status="open")
        session.add(objection)
        session.flush()
        audit.record(
            "deed.object",
            "deed",
            deed.id,
            actor=actor,
            after={"objection_id": objection.id, "reason": reason[:500]},
            region_id=deed.region_id,
            now=now,
        )
    return objection


OBJECTION_DECISIONS = ("upheld", "dismissed")


def resolve_objection(
    *, actor: User, deed_id: int, objection_id: int, decision: str, now: datetime, note: str | None = None
) -> DeedObjection:
    """A reviewer of the deed's region resolves an open objection: upheld, the deed is rejected and
    posts nothing; dismissed, the deed posts at once if its notice has ended and no other objection
    is open, else when the notice ends. The resolver is never the recorder, the resident (or their
    household) or the objector."""
    if decision not in OBJECTION_DECISIONS:
        raise Invalid(errors={"decision": ["请选择异议成立或不成立"]})
    note = (note or "").strip()[:255] or None
    with unit_of_work() as session:
        deed = _reviewable(session, actor, deed_id)
        objection = (
            session.get(DeedObjection, objection_id, populate_existing=True, with_for_update=True)
            if fits_id(objection_id)
            else None
        )
        if objection is None or objection.deed_id != deed.id:
            raise NotFound("objection_not_found")
        duties.require_distinct(deed.recorded_by_id, actor.id)
        duties.require_not_beneficiary(actor, deed.resident)
        duties.require_distinct(objection.user_id, actor.id)
        if objection.status != "open":
            raise Conflict("objection_not_open")
        if deed.status != "approved":
            raise Conflict("deed_not_in_notice")
        objection.status = decision
        objection.resolved_by_id, objection.resolved_at, objection.resolution_note = actor.id, now, note
        audit.record(
            f"deed.objection.{'uphold' if decision == 'upheld' else 'dismiss'}",
            "deed",
            deed.id,
            actor=actor,
            before={"objection_id": objection.id, "status": "open"},
            after={"objection_id": objection.id, "status": decision, "note": note},
            region_id=deed.region_id,
            now=now,
        )
        if decision == "upheld":
            deed.status = "rejected"
            deed.review_note = (note or f"异议成立：{objection.text}")[:255]
            audit.record(
                "deed.reject",
                "deed",
                deed.id,
                actor=actor,
                before={"status": "approved"},
                after={"status": "rejected", "objection_id": objection.id},
                region_id=deed.region_id,
                now=now,
            )
        else:
            session.flush()
            _post_if_due(session, deed, now)
    return objection


def has_open_objection(session: Session, deed_id: int) -> bool:
    return (
        session.scalar(
            sa.select(DeedObjection.id).where(DeedObjection.deed_id == deed_id, DeedObjection.status == "open").limit(1)
        )
        is not None
    )


def _no_open_objection() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(DeedObjection.deed_id == Deed.id, DeedObjection.status == "open")


@dataclass(frozen=True)
class Posting:
    """What one run of the posting job did: deeds posted, and deeds that failed (logged, retried
    by the next run)."""

    posted: int
    failed: int


def post_due(*, now: datetime, limit: int = 500) -> Posting:
    """Post every approved deed whose notice has ended and that no open objection holds (the
    scheduled job). Each deed posts in a unit of work of its own: one that fails is logged and
    counted, and the others still post. Idempotent."""
    due = list(
        db.session.scalars(
            sa.select(Deed.id)
            .where(Deed.status == "approved", Deed.notice_until <= now, _no_open_objection())
            .order_by(Deed.id)
            .limit(limit)
        )
    )
    db.session.rollback()
    posted = failed = 0
    for deed_id in due:
        try:
            _, done = _post_one(deed_id, now)
        except Exception:
            failed += 1
            log.exception("deed %s could not be posted", deed_id)
        else:
            posted += done
    return Posting(posted, failed)


def post(deed_id: int, *, now: datetime) -> Deed:
    """Post one deed whose notice has ended, unless it was decided otherwise meanwhile."""
    deed, _ = _post_one(deed_id, now)
    return deed


def _post_one(deed_id: int, now: datetime) -> tuple[Deed, bool]:
    with unit_of_work() as session:
        # The row lock makes a second, concurrent run wait and then see "posted".
        deed = session.get(Deed, deed_id, populate_existing=True, with_for_update=True)
        return deed, _post_if_due(session, deed, now)


def _post_if_due(session: Session, deed: Deed, now: datetime) -> bool:
    if deed.status != "approved" or deed.notice_until is None or deed.notice_until > now:
        return False  # voided or rejected meanwhile, posted by another run, or still on notice
    if has_open_objection(session, deed.id):
        return False  # held until a reviewer resolves the objection
    moved, unpaid = _book(session, deed, now)
    deed.status, deed.posted_at = "posted", now
    audit.record(
        "deed.post",
        "deed",
        deed.id,
        after={"points": moved, "unpaid": unpaid},
        region_id=deed.region_id,
        now=now,
    )
    return True


def _book(session: Session, deed: Deed, now: datetime) -> tuple[int, int]:
    """The one place a deed moves points (through the points door, which writes the archive entry).
    Returns the points moved (signed) and those left unpaid."""
    positive = deed.points > 0
    posted = awards.credit_deed(
        session,
        user_id=deed.resident_id,
        region_id=deed.region_id,
        points=deed.points,
        key=f"deed:{deed.id}",
        now=now,
        actor_id=deed.reviewed_by_id,
        occurred_at=datetime.combine(deed.occurred_on, datetime.min.time(), tzinfo=now.tzinfo),
        summary=f"{'好人好事' if positive else '扣分'}：{deed.deed_type.name}，{deed.description[:80]}",
        details={
            "deed_id": deed.id,
            "type": deed.deed_type.code,
            "requested": deed.points,
            "recorded_by": deed.recorded_by.name,
        },
        cause=("deed", deed.id),
    )
    deed.transfer_id = posted.transfer_id
    moved = posted.move.moved if positive else -posted.move.moved
    return moved, posted.move.unpaid


def public_notice(now: datetime, *, days: int = 30) -> sa.Select:
    """What the public notice shows, newest first: deeds on notice (or held by an objection), and
    those posted, or rejected on an upheld objection, in the last `days` days."""
    since = now - timedelta(days=days)
    upheld = sa.exists().where(
        DeedObjection.deed_id == Deed.id, DeedObjection.status == "upheld", DeedObjection.resolved_at >= since
    )
    return (
        sa.select(Deed)
        .where(
            sa.or_(
                Deed.status == "approved",
                sa.and_(Deed.status == "posted", Deed.posted_at >= since),
                sa.and_(Deed.status == "rejected", upheld),
            )
        )
        .order_by(Deed.id.desc())
    )


def public_name(user: User) -> str:
    """On the notice: the name only with consent, else masked (DESIGN §8)."""
    return user.name if user.consent_public_name else pii.mask_name(user.name)
