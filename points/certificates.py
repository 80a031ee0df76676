"""Service-record certificates (志愿服务记录证明): a resident's service records and totals for a
period, with a public verification code; the public check shows only masked personal data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from community import pii
from community.models import User
from core import audit
from core.db import db, unit_of_work
from core.errors import Invalid, NotFound
from points import archive
from points.models import ArchiveEntry, Certificate

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed by hand


@dataclass
class Period:
    start: datetime
    end: datetime


def _period(period_from: date, period_to: date) -> Period:
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    start = datetime.combine(period_from, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(period_to + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return Period(start, end)


def service_entries(user_id: int, period_from: date, period_to: date) -> list[ArchiveEntry]:
    p = _period(period_from, period_to)
    return list(
        db.session.scalars(
            sa.select(ArchiveEntry)
            .where(
                ArchiveEntry.user_id == user_id,
                ArchiveEntry.kind.in_(("service", "reversal")),
                ArchiveEntry.occurred_at >= p.start,
                ArchiveEntry.occurred_at < p.end,
            )
            .order_by(ArchiveEntry.seq)
        )
    )


def issue(*, user: User, period_from: date, period_to: date, now: datetime, actor: User | None = None) -> Certificate:
    if period_to < period_from or period_from > now.date() + timedelta(days=1):
        raise Invalid("period_invalid", errors={"period": ["起止日期不正确"]})
    with unit_of_work() as session:
        rows = service_entries(user.id, period_from, period_to)
        minutes = sum(r.service_minutes for r in rows)
        manual = sum(r.service_minutes for r in rows if r.manual)
        organizers = sorted({(r.details or {}).get("activity", {}).get("organizer", "") for r in rows} - {""})
        cert = Certificate(
            code="".join(secrets.choice(ALPHABET) for _ in range(12)),
            user_id=user.id,
            period_from=period_from,
            period_to=period_to,
            service_minutes=max(0, minutes),
            manual_minutes=max(0, manual),
            records=sum(1 for r in rows if r.kind == "service"),
            points=sum(r.points for r in rows),
            head_hash=archive.head_hash(session, user.id),
            issuer="、".join(organizers)[:128] or user.region.name,
            issued_by_id=getattr(actor or user, "id", None),
            issued_at=now,
        )
        session.add(cert)
        session.flush()
        audit.record(
            "certificate.issue",
            "certificate",
            cert.id,
            actor=actor or user,
            after={"code": cert.code, "from": period_from, "to": period_to, "minutes": cert.service_minutes},
            region_id=user.region_id,
            now=now,
        )
    return cert


def lookup(code: str) -> Certificate:
    cert = db.session.scalar(sa.select(Certificate).where(Certificate.code == (code or "").strip().upper()))
    if cert is None:
        raise NotFound("certificate_not_found")
    return cert


def public_view(cert: Certificate) -> dict:
    """What anyone holding the code may see: masked name and ID, volunteer number, period, hours."""
    user = cert.user
    return {
        "valid": True,
        "code": cert.code,
        "resident": {
            "name": pii.mask_name(user.name),
            "volunteer_no": user.volunteer_no,
            "id_number": user.id_number_masked,
        },
        "period": {"from": cert.period_from.isoformat(), "to": cert.period_to.isoformat()},
        "service_hours": round(cert.service_minutes / 60, 2),
        "manual_hours": round(cert.manual_minutes / 60, 2),
        "records": cert.records,
        "issuer": cert.issuer,
        "issued_at": cert.issued_at.isoformat(),
    }
