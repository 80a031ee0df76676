"""Admin adjustments (管理员调整): an admin credits or debits a resident of their region, with a
reason, and every adjustment is kept as a row that says who asked, who decided and what it posted.

Never for the admin or their household (`points.duties`). An adjustment of at most
`ADJUSTMENT_REVIEW_ABOVE` points either way posts at once; a larger one waits for a second admin of
the resident's region, who is neither the requester nor of the resident's household (DESIGN §1:
adjustments are reviewed). Points move only in `_book`; nothing here touches a balance otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from community.models import User
from core import audit
from core.db import unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.security import authorize
from points import awards, duties, ledger
from points.awards import issuer_region
from points.models import Adjustment, ArchiveEntry, fits_id

DEFAULT_REVIEW_ABOVE = 20


SPLIT_WINDOW = timedelta(days=30)


def review_above() -> int:
    """Adjustments of more points than this (either way) need a second admin."""
    return int(current_app.config.get("ADJUSTMENT_REVIEW_ABOVE", DEFAULT_REVIEW_ABOVE))


def request(*, actor: User, resident_id: int, points: int, reason: str, key: str, now: datetime) -> Adjustment:
    """An admin of the resident's region asks to credit (points > 0) or debit them, with a reason.
    Posted at once when small (status "posted", with its archive entry), else left "pending".
    Idempotent by `key` (from the request's Idempotency-Key): a repeat returns the first row."""
    reason = (reason or "").strip()
    if not isinstance(points, int) or isinstance(points, bool) or points == 0:
        raise Invalid("amount_invalid", errors={"points": ["积分须为非零整数"]})
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写调整原因"]})
    with unit_of_work() as session:
        authorize(actor, "admin")
        resident = session.get(User, resident_id) if fits_id(resident_id) else None
        if resident is None:
            raise NotFound("not_a_resident")
        authorize(actor, "admin", resident, hide=True)
        duties.require_not_beneficiary(actor, resident)
        ledger_key = f"adjustment:{resident.id}:{key}"
        # Lock first, then look: a concurrent repeat of the key waits here and finds the first row.
        ledger.hold(session, resident.id)
        existing = session.scalar(sa.select(Adjustment).where(Adjustment.key == ledger_key))
        if existing is not None:
            if (existing.points, existing.reason, existing.requested_by_id) != (points, reason[:200], actor.id):
                raise Conflict("idempotency_conflict")
            return existing
        adjustment = Adjustment(
            resident_id=resident.id,
            issuer_region_id=issuer_region(actor, resident).id,
            points=points,
            reason=reason[:200],
            status="pending",
            key=ledger_key,
            requested_by_id=actor.id,
            requested_at=now,
        )
        session.add(adjustment)
        session.flush()
        if abs(points) + _posted_alone(session, actor, resident, now) <= review_above():
            _settle(session, adjustment, decider=actor, note=None, now=now)
            audit.record(
                "points.adjust",
                "user",
                resident.id,
                actor=actor,
                after={"points": points, "reason": reason},
                region_id=resident.region_id,
                now=now,
            )
        else:
            audit.record(
                "points.adjust.request",
                "adjustment",
                adjustment.id,
                actor=actor,
                after={"resident_id": resident.id, "points": points, "reason": reason, "status": "pending"},
                region_id=resident.region_id,
                now=now,
            )
    return adjustment


def _posted_alone(session, actor: User, resident: User, now: datetime) -> int:
    """Points this admin posted for this resident without a second admin in the last 30 days: the
    threshold applies to their sum, so a large adjustment cannot be split into small ones."""
    return int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(sa.func.abs(Adjustment.points)), 0)).where(
                Adjustment.resident_id == resident.id,
                Adjustment.requested_by_id == actor.id,
                Adjustment.decided_by_id == actor.id,
                Adjustment.status == "posted",
                Adjustment.requested_at >= now - SPLIT_WINDOW,
            )
        )
        or 0
    )


def approve(*, actor: User, adjustment_id: int, now: datetime, note: str | None = None) -> Adjustment:
    """A second admin of the resident's region posts a pending adjustment: never the requester,
    never the resident or one of their household."""
    with unit_of_work() as session:
        adjustment = _decidable(session, actor, adjustment_id)
        duties.require_distinct(adjustment.requested_by_id, actor.id)
        duties.require_not_beneficiary(actor, adjustment.resident)
        if adjustment.status != "pending":
            raise Conflict("adjustment_not_pending")
        _settle(session, adjustment, decider=actor, note=note, now=now)
        audit.record(
            "points.adjust.approve",
            "adjustment",
            adjustment.id,
            actor=actor,
            before={"status": "pending"},
            after={
                "status": "posted",
                "resident_id": adjustment.resident_id,
                "points": adjustment.points,
                "reason": adjustment.reason,
                "requested_by": adjustment.requested_by_id,
                "note": adjustment.decision_note,
            },
            region_id=adjustment.resident.region_id,
            now=now,
        )
    return adjustment


def reject(*, actor: User, adjustment_id: int, reason: str, now: datetime) -> Adjustment:
    """An admin of the resident's region (the requester too, withdrawing it) refuses a pending
    adjustment with a reason; nothing is posted. The resident's household never decides."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写驳回原因"]})
    with unit_of_work() as session:
        adjustment = _decidable(session, actor, adjustment_id)
        duties.require_not_beneficiary(actor, adjustment.resident)
        if adjustment.status != "pending":
            raise Conflict("adjustment_not_pending")
        adjustment.status = "rejected"
        adjustment.decided_by_id, adjustment.decided_at = actor.id, now
        adjustment.decision_note = reason[:255]
        audit.record(
            "points.adjust.reject",
            "adjustment",
            adjustment.id,
            actor=actor,
            before={"status": "pending"},
            after={"status": "rejected", "reason": reason[:255]},
            region_id=adjustment.resident.region_id,
            now=now,
        )
    return adjustment


def _decidable(session: Session, actor: User, adjustment_id: int) -> Adjustment:
    authorize(actor, "admin")
    adjustment = (
        session.get(Adjustment, adjustment_id, populate_existing=True, with_for_update=True)
        if fits_id(adjustment_id)
        else None
    )
    if adjustment is None:
        raise NotFound("adjustment_not_found")
    authorize(actor, "admin", adjustment, hide=True)
    return adjustment


def _settle(session: Session, adjustment: Adjustment, *, decider: User, note: str | None, now: datetime) -> None:
    adjustment.entry = _book(session, adjustment, actor=decider, now=now)
    adjustment.status = "posted"
    adjustment.decided_by_id, adjustment.decided_at = decider.id, now
    adjustment.decision_note = (note or "")[:255] or None


def _book(session: Session, adjustment: Adjustment, *, actor: User, now: datetime) -> ArchiveEntry:
    """The one place an adjustment moves points (through the points door, with its entry)."""
    details = {"reason": adjustment.reason, "by": adjustment.requested_by.name, "adjustment_id": adjustment.id}
    if actor.id != adjustment.requested_by_id:
        details["approved_by"] = actor.name
    return awards.adjust(
        session,
        user_id=adjustment.resident_id,
        region_id=adjustment.issuer_region_id,
        points=adjustment.points,
        key=adjustment.key,
        now=now,
        actor_id=actor.id,
        reason=adjustment.reason,
        details=details,
    ).entry
