"""The moral e-archive (道德电子档案): one append-only, hash-chained timeline per resident.

Each entry's hash covers its canonical content and the previous entry's hash, so that editing,
deleting or reordering any stored row breaks the chain at that row, which `verify()` reports.
Appends for one resident are serialized by locking the resident's ledger account. This module
never commits: the caller's unit of work covers the entry and the points it records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from points import ledger
from points.models import ArchiveEntry

GENESIS = "0" * 64
HASHED_FIELDS = (
    "user_id",
    "seq",
    "kind",
    "occurred_at",
    "recorded_at",
    "summary",
    "points",
    "service_minutes",
    "manual",
    "details",
    "transfer_id",
    "cause_type",
    "cause_id",
    "prev_hash",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def entry_hash(entry: ArchiveEntry) -> str:
    content = {name: _plain(getattr(entry, name)) for name in HASHED_FIELDS}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    session: Session,
    *,
    user_id: int,
    kind: str,
    occurred_at: datetime,
    summary: str,
    now: datetime,
    points: int = 0,
    service_minutes: int = 0,
    manual: bool = False,
    details: dict | None = None,
    transfer_id: int | None = None,
    cause: tuple[str, Any] | None = None,
) -> ArchiveEntry:
    ledger.lock(session, ledger.resident_account(session, user_id))
    last = session.execute(
        sa.select(ArchiveEntry.seq, ArchiveEntry.hash)
        .where(ArchiveEntry.user_id == user_id)
        .order_by(ArchiveEntry.seq.desc())
        .limit(1)
    ).first()
    entry = ArchiveEntry(
        user_id=user_id,
        seq=(last.seq + 1) if last else 1,
        kind=kind,
        occurred_at=occurred_at.astimezone(UTC),
        recorded_at=now.astimezone(UTC),
        summary=summary[:255],
        points=points,
        service_minutes=service_minutes,
        # Stored JSON comes back as plain lists and dicts: hash exactly what will be read back.
        manual=manual,
        details=json.loads(json.dumps(details)) if details is not None else None,
        transfer_id=transfer_id,
        cause_type=cause[0] if cause else None,
        cause_id=str(cause[1]) if cause else None,
        prev_hash=last.hash if last else GENESIS,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None


def verify(session: Session, user_id: int) -> Verification:
    """Walk one resident's chain; the first entry whose content, order or link is wrong is named."""
    expected_prev, expected_seq, count = GENESIS, 1, 0
    while True:
        # Keyset pages: bounded memory for long archives, and no server-side cursor left open.
        batch = session.scalars(
            sa.select(ArchiveEntry)
            .where(ArchiveEntry.user_id == user_id, ArchiveEntry.seq >= expected_seq)
            .order_by(ArchiveEntry.seq)
            .limit(1000)
            .execution_options(populate_existing=True)
        ).all()
        for entry in batch:
            count += 1
            if entry.seq != expected_seq or entry.prev_hash != expected_prev or entry.hash != entry_hash(entry):
                return Verification(False, count, entry.seq)
            expected_prev, expected_seq = entry.hash, entry.seq + 1
        if len(batch) < 1000:
            break
    return Verification(True, count, None)


def residents_with_entries(session: Session) -> list[int]:
    return list(session.scalars(sa.select(ArchiveEntry.user_id).distinct().order_by(ArchiveEntry.user_id)))


def entries(session: Session, user_id: int) -> list[ArchiveEntry]:
    return list(
        session.scalars(sa.select(ArchiveEntry).where(ArchiveEntry.user_id == user_id).order_by(ArchiveEntry.seq))
    )


def head_hash(session: Session, user_id: int) -> str:
    value = session.scalar(
        sa.select(ArchiveEntry.hash).where(ArchiveEntry.user_id == user_id).order_by(ArchiveEntry.seq.desc()).limit(1)
    )
    return value or GENESIS


def totals(session: Session, user_id: int) -> dict[str, Any]:
    """Service hours, points earned and redeemed, and the balance, from the archive and ledger."""

    def total(*conditions: Any) -> int:
        return int(
            session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(ArchiveEntry.points), 0)).where(
                    ArchiveEntry.user_id == user_id, *conditions
                )
            )
            or 0
        )

    minutes = (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ArchiveEntry.service_minutes), 0)).where(
                ArchiveEntry.user_id == user_id
            )
        )
        or 0
    )
    manual = (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ArchiveEntry.service_minutes), 0)).where(
                ArchiveEntry.user_id == user_id, ArchiveEntry.manual.is_(True)
            )
        )
        or 0
    )
    earned = total(ArchiveEntry.kind.in_(("service", "deed", "adjustment")), ArchiveEntry.points > 0)
    redeemed = -total(ArchiveEntry.kind == "redemption") - total(ArchiveEntry.kind == "void")
    return {
        "service_hours": round(minutes / 60, 2),
        "manual_hours": round(manual / 60, 2),
        "points_earned": earned,
        "points_redeemed": max(0, redeemed),
        "balance": ledger.balance(session, user_id),
    }
