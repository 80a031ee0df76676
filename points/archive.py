"""The moral e-archive (道德电子档案): one append-only, hash-chained timeline per resident.

Each entry's hash covers its canonical content and the previous entry's hash, so that editing,
deleting or reordering any stored row breaks the chain at that row. A chain alone does not notice
a missing tail, so the resident's ledger account anchors it (DESIGN §3): it keeps the head hash and
the entry count, every entry names the transfer it records and every transfer of the account has
its entry, and the entries' points add up to the balance. `verify()` compares all of it.
Appends for one resident are serialized by locking the resident's ledger account. This module
never commits: the caller's unit of work covers the entry and the points it records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.db import batch_size, keyset_pages
from points import ledger
from points.models import GENESIS, Account, ArchiveEntry, Transfer

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
    account = ledger.hold(session, user_id)  # once per transaction: the ledger may hold it already
    seq, prev = account.archive_count + 1, account.archive_head
    entry = ArchiveEntry(
        user_id=user_id,
        seq=seq,
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
        prev_hash=prev,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    # Guarded: the anchor moves only from the head this entry was chained to.
    moved = session.execute(
        sa.update(Account)
        .execution_options(synchronize_session=False)
        .where(Account.id == account.id, Account.archive_count == seq - 1)
        .values(archive_count=seq, archive_head=entry.hash)
    ).rowcount
    if moved != 1:
        raise RuntimeError(f"archive of user {user_id} moved under us")
    ledger.track(account, archive_count=seq, archive_head=entry.hash)
    session.flush()
    return entry


@dataclass
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None
    problems: list[str] = field(default_factory=list)


def verify(session: Session, user_id: int) -> Verification:
    """Check one resident's archive against itself and its anchor; name the first bad entry.

    The chain (content, order, links), then the anchor on the ledger account (entry count and head
    hash: a deleted or replaced tail), then entries ↔ transfers both ways (each entry's transfer
    moves this account; each transfer of the account has exactly one entry), then the points of
    the entries against the balance.
    """
    account = session.execute(
        sa.select(Account)
        .where(Account.kind == "resident", Account.owner_type == "user", Account.owner_id == user_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    expected_prev, expected_seq, count, total = GENESIS, 1, 0, 0
    recorded: dict[int, int] = {}
    problems: list[str] = []
    first_bad: int | None = None

    def bad(seq: int, text: str) -> None:
        nonlocal first_bad
        problems.append(text)
        first_bad = seq if first_bad is None else min(first_bad, seq)

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
                bad(entry.seq, f"entry {entry.seq}: content, order or link changed")
                return Verification(False, count, first_bad, problems)
            total += entry.points
            if entry.transfer_id is not None:
                if entry.transfer_id in recorded:
                    bad(entry.seq, f"entry {entry.seq} records transfer {entry.transfer_id} a second time")
                recorded[entry.transfer_id] = entry.seq
            expected_prev, expected_seq = entry.hash, entry.seq + 1
        if len(batch) < 1000:
            break
    if account is None:
        if count:
            bad(1, "archive entries without a ledger account")
        return Verification(not problems, count, first_bad, problems)
    if account.archive_count != count or account.archive_head != expected_prev:
        anchor = f"the anchor says {account.archive_count} entries, the chain has {count}"
        bad(min(count, account.archive_count) + 1, anchor)
    moved = dict(
        session.execute(
            sa.select(Transfer.id, Transfer.amount).where(
                sa.or_(Transfer.from_account_id == account.id, Transfer.to_account_id == account.id)
            )
        ).all()
    )
    for transfer_id, seq in recorded.items():
        if transfer_id not in moved:
            bad(seq, f"entry {seq} names transfer {transfer_id}, which does not move this account")
    missing = sorted(set(moved) - set(recorded))
    if missing:
        bad(count + 1, f"transfers without an archive entry: {missing[:10]}")
    if total != account.balance:
        bad(count + 1, f"entries add up to {total} points, the balance is {account.balance}")
    return Verification(not problems, count, first_bad, problems)


def verify_all(session: Session, *, size: int | None = None) -> Iterator[tuple[int, Verification]]:
    """`verify` for every resident with an account or an archive, a page of `size` at a time."""
    for page in resident_pages(session, size=size):
        for user_id in page:
            yield user_id, verify(session, user_id)


def resident_pages(session: Session, *, size: int | None = None) -> Iterator[list[int]]:
    """Every resident with a ledger account or an archive (an emptied archive still counts), in id
    order, `size` accounts at a time (default: the app's batch size): a walk over a city's residents in bounded memory.

    The accounts are paged by owner id (keyset); each page also takes the archive writers in its id
    range that have no account (a removed account is a break `verify` must report)."""
    size = size or batch_size()
    accounts = sa.select(Account.owner_id).where(Account.kind == "resident", Account.owner_type == "user")
    last = 0
    for rows in keyset_pages(session, accounts, Account.owner_id, size=size):
        owners = [row[0] for row in rows]
        full = len(owners) == size
        yield _with_writers(session, owners, last, owners[-1] if full else None)
        last = owners[-1]
        if not full:
            return
    # No account after `last` (or none at all): the archive writers beyond it, if any.
    tail = _with_writers(session, [], last, None)
    if tail:
        yield tail


def _with_writers(session: Session, owners: list[int], after: int, upto: int | None) -> list[int]:
    writers = sa.select(ArchiveEntry.user_id).where(ArchiveEntry.user_id > after).distinct()
    if upto is not None:
        writers = writers.where(ArchiveEntry.user_id <= upto)
    return sorted(set(owners) | set(session.scalars(writers)))


def entries(session: Session, user_id: int) -> list[ArchiveEntry]:
    return list(
        session.scalars(sa.select(ArchiveEntry).where(ArchiveEntry.user_id == user_id).order_by(ArchiveEntry.seq))
    )


def head_hash(session: Session, user_id: int) -> str:
    value = session.scalar(
        sa.select(Account.archive_head).where(
            Account.kind == "resident", Account.owner_type == "user", Account.owner_id == user_id
        )
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
