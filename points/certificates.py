"""Service-record certificates (志愿服务记录证明): a resident's service hours for a period as finally
settled, with a public verification code; the public check shows only masked personal data.

Hours are counted per attendance as finally settled, on the service day (the check-in time), scanned
and made-up minutes apart: a service entry that a later `reversal` entry names (`reverses_seq`) no
longer counts, whatever day the reversal was written. A certificate stores what it certified (the
figures and the fingerprint of the entries it covered); its check says `corrected` once what it
covered has changed. This module never writes points or archive entries.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community import pii
from community.models import User
from core import audit, clock
from core.db import db, unit_of_work
from core.errors import Invalid, NotFound
from points import archive
from points.models import ArchiveEntry, Certificate

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read aloud and typed by hand
EARLIEST = date(2000, 1, 1)  # before the service existed; also keeps local-day arithmetic in range
# The volunteer domain's idempotency keys: `attendance:<id>:<version>` for the scanned credit,
# `attendance:<id>:<version>:makeup` for an approved make-up. ASCII digits only.
ATTENDANCE_KEY = re.compile(r"attendance:([0-9]{1,18}):([0-9]{1,9})(:makeup)?")


@dataclass
class Settled:
    """The service entries of a period still standing, one settlement per attendance."""

    entries: list[ArchiveEntry] = field(default_factory=list)
    records: int = 0

    @property
    def service_minutes(self) -> int:
        return sum(e.service_minutes for e in self.entries)

    @property
    def manual_minutes(self) -> int:
        return sum(e.service_minutes for e in self.entries if e.manual)

    @property
    def scanned_minutes(self) -> int:
        return self.service_minutes - self.manual_minutes

    @property
    def points(self) -> int:
        return sum(e.points for e in self.entries)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.entries)

    def figures(self) -> dict:
        return hours(self.service_minutes, self.manual_minutes, self.records)


def fingerprint(entries: list[ArchiveEntry]) -> str:
    """What identifies a set of entries: their seqs and chain hashes (entries are immutable)."""
    content = sorted([e.seq, e.hash] for e in entries)
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def hours(service_minutes: int, manual_minutes: int, records: int) -> dict:
    return {
        "service_hours": round(service_minutes / 60, 2),
        "scanned_hours": round((service_minutes - manual_minutes) / 60, 2),
        "manual_hours": round(manual_minutes / 60, 2),
        "records": records,
    }


def _attendance_slot(entry: ArchiveEntry) -> tuple[tuple, int]:
    """Which settlement an entry belongs to, and its version: the attendance for attendance
    credits (scanned and make-up alike), the entry itself for anything else."""
    match = ATTENDANCE_KEY.fullmatch(entry.cause_id or "") if entry.cause_type == "service_key" else None
    if match is None:
        return ("entry", entry.seq), 0
    return ("attendance", int(match[1])), int(match[2])


def settled(session: Session, user_id: int, period_from: date, period_to: date) -> Settled:
    """The service entries that count for `period_from`..`period_to` (local days, inclusive)."""
    start, end = clock.period_range(period_from, period_to)
    # Reversals are dated on the day of the correction, not the service day: read them all.
    reversed_seqs = set()
    for (details,) in session.execute(
        sa.select(ArchiveEntry.details).where(ArchiveEntry.user_id == user_id, ArchiveEntry.kind == "reversal")
    ):
        seq = (details or {}).get("reverses_seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            reversed_seqs.add(seq)
    standing = [
        entry
        for entry in session.scalars(
            sa.select(ArchiveEntry)
            .where(
                ArchiveEntry.user_id == user_id,
                ArchiveEntry.kind == "service",
                ArchiveEntry.occurred_at >= start,
                ArchiveEntry.occurred_at < end,
            )
            .order_by(ArchiveEntry.occurred_at, ArchiveEntry.seq)
        )
        if entry.seq not in reversed_seqs
    ]
    # Each attendance once: only its latest settlement (version) counts, should an older credit
    # have been left standing.
    latest: dict[tuple, int] = {}
    for entry in standing:
        slot, version = _attendance_slot(entry)
        latest[slot] = max(latest.get(slot, version), version)
    counted = [e for e in standing if _attendance_slot(e)[1] == latest[_attendance_slot(e)[0]]]
    return Settled(counted, len(latest))


def issue(*, user: User, period_from: date, period_to: date, now: datetime, actor: User | None = None) -> Certificate:
    """Certify `user`'s service hours for a period of local days that has begun and ended by today."""
    if period_to < period_from or period_from < EARLIEST or period_to > clock.today(now):
        raise Invalid("period_invalid", errors={"period": ["起止日期不正确，结束日期不能晚于今天"]})
    with unit_of_work() as session:
        now_settled = settled(session, user.id, period_from, period_to)
        organizers = sorted(
            {(e.details or {}).get("activity", {}).get("organizer", "") for e in now_settled.entries} - {""}
        )
        cert = Certificate(
            code="".join(secrets.choice(ALPHABET) for _ in range(12)),
            user_id=user.id,
            period_from=period_from,
            period_to=period_to,
            service_minutes=now_settled.service_minutes,
            manual_minutes=now_settled.manual_minutes,
            records=now_settled.records,
            points=now_settled.points,
            entry_seqs=[e.seq for e in now_settled.entries],
            fingerprint=now_settled.fingerprint,
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
            after={
                "code": cert.code,
                "from": period_from,
                "to": period_to,
                "minutes": cert.service_minutes,
                "manual_minutes": cert.manual_minutes,
                "entries": cert.entry_seqs,
            },
            region_id=user.region_id,
            now=now,
        )
    return cert


def lookup(code: str) -> Certificate:
    cert = db.session.scalar(sa.select(Certificate).where(Certificate.code == (code or "").strip().upper()))
    if cert is None:
        raise NotFound("certificate_not_found")
    return cert


@dataclass
class Status:
    """A certificate against the archive today: has what it covered changed, and to what."""

    corrected: bool
    current: Settled


def status(cert: Certificate) -> Status:
    current = settled(db.session, cert.user_id, cert.period_from, cert.period_to)
    if cert.fingerprint is None:
        # Issued before certificates kept their entries: compare what it printed.
        changed = (current.service_minutes, current.manual_minutes) != (cert.service_minutes, cert.manual_minutes)
    else:
        changed = current.fingerprint != cert.fingerprint
    return Status(changed, current)


def certified_entries(cert: Certificate) -> list[ArchiveEntry]:
    """The entries the certificate covered when it was issued (for its printable page)."""
    if cert.entry_seqs is None:
        return settled(db.session, cert.user_id, cert.period_from, cert.period_to).entries
    return list(
        db.session.scalars(
            sa.select(ArchiveEntry)
            .where(ArchiveEntry.user_id == cert.user_id, ArchiveEntry.seq.in_(cert.entry_seqs))
            .order_by(ArchiveEntry.occurred_at, ArchiveEntry.seq)
        )
    )


def public_view(cert: Certificate) -> dict:
    """What anyone holding the code may see: masked name and ID, volunteer number, period, the
    hours it certified and, once a later correction changed what it covered, the current ones."""
    user = cert.user
    state = status(cert)
    return {
        "valid": True,
        "code": cert.code,
        "resident": {
            "name": pii.mask_name(user.name),
            "volunteer_no": user.volunteer_no,
            "id_number": user.id_number_masked,
        },
        "period": {"from": cert.period_from.isoformat(), "to": cert.period_to.isoformat()},
        **hours(cert.service_minutes, cert.manual_minutes, cert.records),
        "corrected": state.corrected,
        "current": state.current.figures(),
        "issuer": cert.issuer,
        "issued_at": cert.issued_at.isoformat(),
    }
