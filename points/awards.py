"""Points in and out of a resident's account, each with its archive entry, in one unit of work:
service credits (called by the volunteer domain) and reversals. Admin adjustments live in
`points.adjustments`.

A reversal always reverses in full: what the resident already spent becomes a debt (shown on the
archive), and every later credit pays debts first (`pay_debts`), so a correction never leaves the
resident with points no service earned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from community.models import Region, User
from core.db import db, unit_of_work
from core.errors import NotFound
from points import archive, ledger
from points.models import ArchiveEntry, Transfer
from points.rules import Credit


def credit_service(
    *,
    user_id: int,
    department_id: int,
    credit: Credit,
    key: str,
    activity: dict[str, Any],
    now: datetime,
    actor_id: int | None = None,
    manual: bool = False,
    cause: tuple[str, Any] | None = None,
) -> ArchiveEntry:
    """Credit one attendance: points from the organizing department to the resident, and an archive
    entry that explains them. `activity` holds what the record must show (title, date, place,
    organizer). Idempotent by `key` (e.g. `attendance:42:1`): a repeat returns the first entry."""
    with unit_of_work() as session:
        # Lock first, then look: a concurrent repeat waits here and then finds the first entry.
        ledger.lock(session, ledger.resident_account(session, user_id))
        existing = session.scalar(
            sa.select(ArchiveEntry).where(ArchiveEntry.cause_type == "service_key", ArchiveEntry.cause_id == key)
        )
        if existing is not None:
            return existing
        details = {"activity": activity, "credit": credit.as_details(), "key": key}
        move = None
        if credit.points > 0:
            move = ledger.transfer(
                session,
                source=ledger.issuer_account(session, "department", department_id),
                target=ledger.resident_account(session, user_id),
                amount=credit.points,
                kind="service",
                key=key,
                now=now,
                actor_id=actor_id,
                cause=cause or ("service", key),
                details={"minutes": credit.credited_minutes},
            )
        label = "补录服务" if manual else "志愿服务"
        entry = record(
            session,
            move=move,
            actor_id=actor_id,
            user_id=user_id,
            kind="service",
            occurred_at=credit.check_in,
            now=now,
            summary=f"{label}：{activity.get('title', '')}（{credit.explanation()}）",
            points=credit.points,
            service_minutes=credit.credited_minutes,
            manual=manual,
            details=details,
            cause=("service_key", key),
        )
    return entry


def record(
    session, *, move: ledger.Move | None, user_id: int, now: datetime, actor_id: int | None, **entry: Any
) -> ArchiveEntry:
    """The one way a movement of a resident's points reaches their archive: the entry naming its
    transfer and, when the movement credited the resident, the debts it pays first (each with an
    entry of its own). Services that credit a resident record through here, never around it."""
    transfer = move.transfer if move is not None else None
    written = archive.append(
        session, user_id=user_id, now=now, transfer_id=transfer.id if transfer is not None else None, **entry
    )
    if (
        transfer is not None
        and not move.replayed
        and transfer.to_account_id == ledger.resident_account(session, user_id)
    ):
        pay_debts(session, user_id=user_id, key=transfer.idempotency_key, now=now, actor_id=actor_id)
    return written


def hold(session, user_id: int) -> None:
    """Lock the resident's account for the rest of the unit of work: callers that read what the
    resident was already credited (a daily cap, overlaps) do it after this, so two credits at once
    cannot both see the allowance unused."""
    ledger.lock(session, ledger.resident_account(session, user_id))


def pay_debts(session, *, user_id: int, key: str, now: datetime, actor_id: int | None) -> list[ArchiveEntry]:
    """After a credit (`key`), pay the resident's open debts first, each with its archive entry
    (`record` calls this for every credit it writes)."""
    written = []
    for paid in ledger.pay_debts(
        session, ledger.resident_account(session, user_id), key=key, now=now, actor_id=actor_id
    ):
        written.append(
            archive.append(
                session,
                user_id=user_id,
                kind="reversal",
                occurred_at=now,
                now=now,
                summary=f"抵扣更正欠分 {paid.amount} 分",
                points=-paid.amount,
                details={"debt": paid.debt.id, "repays": paid.debt.original_transfer_id},
                transfer_id=paid.transfer.id,
                cause=("debt", paid.debt.id),
            )
        )
    return written


def reverse_service(*, key: str, new_key: str, reason: str, now: datetime, actor_id: int | None) -> ArchiveEntry | None:
    """Take back a service credit (a correction): a reversal transfer and a 'reversal' entry."""
    with unit_of_work() as session:
        original = session.scalar(sa.select(Transfer).where(Transfer.idempotency_key == key))
        entry = session.scalar(
            sa.select(ArchiveEntry).where(ArchiveEntry.cause_type == "service_key", ArchiveEntry.cause_id == key)
        )
        if entry is None:
            return None
        ledger.lock(session, ledger.resident_account(session, entry.user_id))
        done = session.scalar(
            sa.select(ArchiveEntry).where(ArchiveEntry.cause_type == "reversal_key", ArchiveEntry.cause_id == new_key)
        )
        if done is not None:
            return done
        move = (
            ledger.reverse(session, original, key=new_key, now=now, actor_id=actor_id, reason=reason)
            if original is not None
            else None
        )
        taken = move.moved if move else 0
        unpaid = move.unpaid if move else 0
        summary = f"更正：撤销第 {entry.seq} 条服务记录（{reason}）"
        if unpaid:
            summary += f"，积分已使用，欠 {unpaid} 分，由之后获得的积分先抵扣"
        return archive.append(
            session,
            user_id=entry.user_id,
            kind="reversal",
            occurred_at=now,
            now=now,
            summary=summary,
            points=-taken,
            service_minutes=-entry.service_minutes,
            manual=entry.manual,
            details={"reverses_seq": entry.seq, "reason": reason, "unpaid": unpaid},
            transfer_id=move.transfer.id if move and move.transfer else None,
            cause=("reversal_key", new_key),
        )


def issuer_region(actor: User, resident: User, role: str = "admin") -> Region:
    """The most specific region over `resident` in which `actor` holds `role` (who awards)."""
    ids = {scope_id for scope_type, scope_id in actor.grant_keys(role) if scope_type == "region"}
    chain = [rid for rid in reversed(resident.region.ancestor_ids) if rid in ids]
    if not chain:
        raise NotFound("not_a_resident")
    return db.session.get(Region, chain[0])
