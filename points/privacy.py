"""What the points domain holds of a resident, for their own export (a hook of `community.privacy`,
added by `init_app`): their account, their archive, the deeds recorded about them, their
certificates. A closure changes none of it: every row names the resident by id, and the archive
entries' hashes never covered a name, so the chain verifies after the name is gone."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community.models import User
from points import archive
from points.models import Certificate, Deed, DeedType


def account_of(session: Session, user: User) -> list[dict[str, Any]]:
    return [{**archive.totals(session, user.id), "head_hash": archive.head_hash(session, user.id)}]


def archive_of(session: Session, user: User) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "kind": e.kind,
            "occurred_at": e.occurred_at,
            "summary": e.summary,
            "points": e.points,
            "service_minutes": e.service_minutes,
            "manual": e.manual,
            "hash": e.hash,
        }
        for e in archive.entries(session, user.id)
    ]


def deeds_of(session: Session, user: User) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(Deed, DeedType.name)
        .join(DeedType, DeedType.id == Deed.deed_type_id)
        .where(Deed.resident_id == user.id)
        .order_by(Deed.id)
    ).all()
    return [
        {
            "type": name,
            "points": d.points,
            "description": d.description,
            "occurred_on": d.occurred_on,
            "status": d.status,
            "recorded_at": d.recorded_at,
            "review_note": d.review_note,
        }
        for d, name in rows
    ]


def certificates_of(session: Session, user: User) -> list[dict[str, Any]]:
    rows = session.scalars(sa.select(Certificate).where(Certificate.user_id == user.id).order_by(Certificate.id))
    return [
        {
            "code": c.code,
            "period_from": c.period_from,
            "period_to": c.period_to,
            "service_minutes": c.service_minutes,
            "points": c.points,
            "issued_at": c.issued_at,
        }
        for c in rows
    ]
