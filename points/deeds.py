"""Deeds and deductions (好人好事 / 违规扣分): recorded by a grid worker, reviewed by someone else,
shown on the public notice (公示) for the region's notice days, then posted to the ledger by a
scheduled job unless a reviewer voided them. A deduction takes only what the balance holds; the
rest is recorded as unpaid (DESIGN §3), and it never touches any other right (§8).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from community import pii
from community.models import Region, User
from core import audit, uploads
from core.db import db, unit_of_work
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.security import authorize, covers
from points import archive, ledger, policies
from points.models import Deed, DeedObjection, DeedType

DEFAULT_TYPES = [
    ("jianyiyongwei", "见义勇为", 50),
    ("haorenhaoshi", "好人好事", 10),
    ("xiaolaoaiqin", "孝老爱亲", 10),
    ("lingliting", "邻里互助", 5),
    ("huanjingweihu", "环境卫生维护", 5),
    ("luanrenglaji", "乱扔垃圾", -5),
    ("weiguiranfang", "违规燃放烟花爆竹", -10),
    ("luanduiluanfang", "乱堆乱放", -5),
]


def ensure_default_types() -> None:
    with unit_of_work() as session:
        for code, name, points in DEFAULT_TYPES:
            if (
                session.scalar(sa.select(DeedType.id).where(DeedType.code == code, DeedType.region_id.is_(None)))
                is None
            ):
                session.add(DeedType(code=code, name=name, points=points, region_id=None))


def types_for(region: Region | None) -> sa.Select:
    """Deed types that apply in `region`: the region's own (and its ancestors') and the global ones."""
    ids = region.ancestor_ids if region else []
    return (
        sa.select(DeedType)
        .where(DeedType.active.is_(True), sa.or_(DeedType.region_id.is_(None), DeedType.region_id.in_(ids)))
        .order_by(DeedType.points.desc(), DeedType.id)
    )


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
    if occurred_on > now.date() + timedelta(days=1):
        errors["occurred_on"] = ["发生日期不能晚于今天"]
    if errors:
        raise Invalid(errors=errors)
    with unit_of_work() as session:
        authorize(actor, "grid_worker")
        resident = session.get(User, resident_id)
        if resident is None:
            raise Invalid("not_a_resident", errors={"resident_id": ["找不到该居民"]})
        authorize(actor, "grid_worker", resident)
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


REVIEWERS = ("reviewer", "admin")


def photo_key(*, viewer: User, deed_id: int) -> str:
    """The key of a deed's photo, for those who may see it: the resident, and the grid workers,
    reviewers and admins over the deed. To anyone else the photo does not exist (404)."""
    deed = db.session.get(Deed, deed_id)
    if deed is None or not deed.photo:
        raise NotFound("deed_not_found")
    if viewer.id == deed.resident_id or covers(viewer, ("grid_worker", *REVIEWERS), deed):
        return deed.photo
    raise NotFound("deed_not_found")


def _reviewable(session, actor: User, deed_id: int) -> Deed:
    """A deed the actor may review: reviewers and admins of its region (DESIGN §1)."""
    authorize(actor, REVIEWERS)
    deed = session.get(Deed, deed_id, populate_existing=True, with_for_update=True)
    if deed is None:
        raise NotFound()
    authorize(actor, REVIEWERS, deed, hide=True)
    return deed


def approve(*, actor: User, deed_id: int, now: datetime, note: str | None = None) -> Deed:
    """A reviewer (never the recorder) approves: the deed goes on the public notice."""
    return _decide(actor, deed_id, now, note, approved=True)


def reject(*, actor: User, deed_id: int, now: datetime, note: str | None = None) -> Deed:
    return _decide(actor, deed_id, now, note, approved=False)


def _decide(actor: User, deed_id: int, now: datetime, note: str | None, *, approved: bool) -> Deed:
    with unit_of_work() as session:
        deed = _reviewable(session, actor, deed_id)
        if deed.recorded_by_id == actor.id:
            raise Forbidden("same_person")
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
    """During the notice a reviewer may void an approved deed, with a reason; nothing is posted."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写作废原因"]})
    with unit_of_work() as session:
        deed = _reviewable(session, actor, deed_id)
        if deed.status != "approved":
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


def object_to(*, actor: User, deed_id: int, text: str, now: datetime) -> DeedObjection:
    """Any signed-in resident may object to a deed on the notice (异议); reviewers see it."""
    text = (text or "").strip()
    if not text:
        raise Invalid("reason_required", errors={"text": ["请填写异议内容"]})
    with unit_of_work() as session:
        deed = session.get(Deed, deed_id)
        if deed is None or deed.status != "approved":
            raise NotFound("deed_not_in_notice")
        objection = DeedObjection(deed_id=deed.id, user_id=actor.id, text=text[:500], created_at=now)
        session.add(objection)
        audit.record(
            "deed.object", "deed", deed.id, actor=actor, after={"text": text[:500]}, region_id=deed.region_id, now=now
        )
    return objection


def post_due(*, now: datetime, limit: int = 500) -> int:
    """Post every approved deed whose notice has ended (the scheduled job). Idempotent."""
    due = list(
        db.session.scalars(
            sa.select(Deed.id).where(Deed.status == "approved", Deed.notice_until <= now).order_by(Deed.id).limit(limit)
        )
    )
    db.session.rollback()
    for deed_id in due:
        post(deed_id, now=now)
    return len(due)


def post(deed_id: int, *, now: datetime) -> Deed:
    with unit_of_work() as session:
        # The row lock makes a second, concurrent run wait and then see "posted".
        deed = session.get(Deed, deed_id, populate_existing=True, with_for_update=True)
        if deed.status != "approved":
            return deed  # voided meanwhile, or posted by another run
        issuer = ledger.issuer_account(session, "region", deed.region_id)
        resident = ledger.resident_account(session, deed.resident_id)
        positive = deed.points > 0
        source, target = (issuer, resident) if positive else (resident, issuer)
        move = ledger.transfer(
            session,
            source=source,
            target=target,
            amount=abs(deed.points),
            kind="deed" if positive else "deduction",
            key=f"deed:{deed.id}",
            now=now,
            actor_id=deed.reviewed_by_id,
            cause=("deed", deed.id),
            partial=not positive,
        )
        moved = move.moved if positive else -move.moved
        name = deed.deed_type.name
        summary = f"{'好人好事' if positive else '扣分'}：{name}，{deed.description[:80]}"
        if move.unpaid:
            summary += f"（余额不足，实扣 {move.moved} 分，未扣 {move.unpaid} 分）"
        archive.append(
            session,
            user_id=deed.resident_id,
            kind="deed" if positive else "deduction",
            occurred_at=datetime.combine(deed.occurred_on, datetime.min.time(), tzinfo=now.tzinfo),
            now=now,
            summary=summary,
            points=moved,
            details={
                "deed_id": deed.id,
                "type": deed.deed_type.code,
                "requested": deed.points,
                "unpaid": move.unpaid,
                "recorded_by": deed.recorded_by.name,
            },
            transfer_id=move.transfer.id if move.transfer else None,
            cause=("deed", deed.id),
        )
        deed.status, deed.posted_at = "posted", now
        deed.transfer_id = move.transfer.id if move.transfer else None
        audit.record(
            "deed.post",
            "deed",
            deed.id,
            after={"points": moved, "unpaid": move.unpaid},
            region_id=deed.region_id,
            now=now,
        )
    return deed


def public_name(user: User) -> str:
    """On the notice: the name only with consent, else masked (DESIGN §8)."""
    return user.name if user.consent_public_name else pii.mask_name(user.name)
