"""The one door into points: every movement of a resident's points, each with its archive entry.

Other domains call these and nothing else of `points` that writes: `volunteer` credits service
(`credit_service`) and takes it back (`reverse_service`); `exchange` debits a basket
(`debit_redemption`) and refunds it (`refund`); inside `points`, deeds (`credit_deed`), admin
adjustments (`adjust`) and expiry (`expire`) come through here too. Each joins the caller's unit
of work, holds the resident's account once for the whole transaction (`ledger.hold`), moves the
points through the ledger and writes the archive entry that explains them (`record`), paying the
resident's debts first when the movement credits them.

A reversal always reverses in full: what the resident already spent becomes a debt (shown on the
archive), and every later credit pays debts first, so a correction never leaves the resident with
points no service earned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community.models import Region, User
from core.db import db, unit_of_work
from core.errors import NotFound
from points import archive, ledger
from points.models import ArchiveEntry, Transfer
from points.rules import Credit


@dataclass
class Posting:
    """What a movement did: its transfer (None when nothing moved), the entry on the archive, the
    points moved and left unpaid, and the resident's balance afterwards (known without a query)."""

    move: ledger.Move
    entry: ArchiveEntry | None
    balance_after: int

    @property
    def transfer_id(self) -> int | None:
        return self.move.transfer.id if self.move.transfer is not None else None


def hold(session: Session, user_id: int) -> None:
    """Lock the resident's account for the rest of the unit of work: callers that read what the
    resident was already credited (a daily cap, overlaps) do it after this, so two credits at once
    cannot both see the allowance unused. The movements below reuse the hold."""
    ledger.hold(session, user_id)


def balance(session: Session, user_id: int) -> int:
    return ledger.balance(session, user_id)


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
    proxy_by: int | None = None,
) -> ArchiveEntry:
    """Credit one attendance: points from the organizing department to the resident, and an archive
    entry that explains them. `activity` holds what the record must show (title, date, place,
    organizer). Idempotent by `key` (e.g. `attendance:42:1`): a repeat returns the first entry.

    `proxy_by`: the user who acted on the resident's behalf (代办: signed them up, or scanned their
    card). The entry says 代办 and names them by id (pages show the name), never by the name itself:
    the entry is hashed for good, and a name must be able to leave with its owner's account."""
    with unit_of_work() as session:
        ledger.hold(session, user_id)  # first, then look: a concurrent repeat waits, then finds it
        move = None
        if credit.points > 0:
            move = ledger.transfer(
                session,
                source=ledger.issuer("department", department_id),
                target=ledger.resident(user_id),
                amount=credit.points,
                kind="service",
                key=key,
                now=now,
                actor_id=actor_id,
                cause=cause or ("service", key),
                details={"minutes": credit.credited_minutes},
            )
        if move is None or move.replayed:
            # Nothing moved (a zero credit) or the key was used: the entry, if written, says so.
            existing = _entry(session, "service_key", key)
            if existing is not None:
                return existing
        label = ("补录服务" if manual else "志愿服务") + ("（代办）" if proxy_by else "")
        details = {"activity": activity, "credit": credit.as_details(), "key": key}
        if proxy_by:
            details["proxy_by"] = proxy_by
        return record(
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


def reverse_service(*, key: str, new_key: str, reason: str, now: datetime, actor_id: int | None) -> ArchiveEntry | None:
    """Take back a service credit (a correction): a reversal transfer and a 'reversal' entry."""
    with unit_of_work() as session:
        entry = _entry(session, "service_key", key)
        if entry is None:
            return None
        ledger.hold(session, entry.user_id)
        done = _entry(session, "reversal_key", new_key)
        if done is not None:
            return done
        original = session.scalar(sa.select(Transfer).where(Transfer.idempotency_key == key))
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


def debit_redemption(
    session: Session, *, user_id: int, store_id: int, amount: int, key: str, now: datetime, actor_id: int
) -> Posting:
    """A basket paid at the counter: the points from the resident to the store, all or nothing
    (`insufficient_points` otherwise). The order that names this transfer is written next, then
    its entry through `record` (the entry names the order, the order names the transfer)."""
    move = ledger.transfer(
        session,
        source=ledger.resident(user_id),
        target=ledger.store(store_id),
        amount=amount,
        kind="redemption",
        key=key,
        now=now,
        actor_id=actor_id,
        cause=("store", store_id),
    )
    return Posting(move, None, ledger.hold(session, user_id).balance)


def refund(
    session: Session,
    *,
    transfer_id: int,
    user_id: int,
    key: str,
    reason: str,
    now: datetime,
    actor_id: int,
    summary: str,
    details: dict[str, Any],
    cause: tuple[str, Any],
    entry_cause: tuple[str, Any],
) -> Posting:
    """Give back what a redemption took, in full, by a new transfer (never an edit); the refund
    is a credit like any other, so it pays a correction's debt first."""
    ledger.hold(session, user_id)
    original = session.get(Transfer, transfer_id)
    if original is None:
        raise NotFound()
    move = ledger.reverse(session, original, key=key, now=now, actor_id=actor_id, reason=reason, cause=cause)
    entry = record(
        session,
        move=move,
        actor_id=actor_id,
        user_id=user_id,
        kind="void",
        occurred_at=now,
        now=now,
        summary=summary,
        points=move.moved,
        details=details,
        cause=entry_cause,
    )
    return Posting(move, entry, ledger.hold(session, user_id).balance)


def credit_deed(
    session: Session,
    *,
    user_id: int,
    region_id: int,
    points: int,
    key: str,
    now: datetime,
    actor_id: int | None,
    occurred_at: datetime,
    summary: str,
    details: dict[str, Any],
    cause: tuple[str, Any],
) -> Posting:
    """A reviewed deed: a credit from the region (好人好事), or a deduction (扣分) that takes only
    what the resident holds and reports the rest unpaid."""
    positive = points > 0
    mine, region = ledger.resident(user_id), ledger.issuer("region", region_id)
    move = ledger.transfer(
        session,
        source=region if positive else mine,
        target=mine if positive else region,
        amount=abs(points),
        kind="deed" if positive else "deduction",
        key=key,
        now=now,
        actor_id=actor_id,
        cause=cause,
        partial=not positive,
    )
    moved = move.moved if positive else -move.moved
    if move.unpaid:
        summary += f"（余额不足，实扣 {move.moved} 分，未扣 {move.unpaid} 分）"
    entry = record(
        session,
        move=move,
        actor_id=actor_id,
        user_id=user_id,
        kind="deed" if positive else "deduction",
        occurred_at=occurred_at,
        now=now,
        summary=summary,
        points=moved,
        details={**details, "unpaid": move.unpaid},
        cause=cause,
    )
    return Posting(move, entry, ledger.hold(session, user_id).balance)


def adjust(
    session: Session,
    *,
    user_id: int,
    region_id: int,
    points: int,
    key: str,
    now: datetime,
    actor_id: int,
    reason: str,
    details: dict[str, Any],
) -> Posting:
    """An admin's adjustment (either way), all or nothing, with its entry; once per `key`."""
    mine, region = ledger.resident(user_id), ledger.issuer("region", region_id)
    move = ledger.transfer(
        session,
        source=region if points > 0 else mine,
        target=mine if points > 0 else region,
        amount=abs(points),
        kind="adjustment",
        key=key,
        now=now,
        actor_id=actor_id,
        cause=("resident", user_id),
        details={"reason": reason},
    )
    # Looked up after the transfer (which held the account): an entry written for this key before
    # adjustments were kept as rows is found instead of written twice.
    entry = _entry(session, "adjustment_key", key)
    if entry is None:
        entry = record(
            session,
            move=move,
            actor_id=actor_id,
            user_id=user_id,
            kind="adjustment",
            occurred_at=now,
            now=now,
            summary=f"管理员调整：{reason}",
            points=points,
            details=details,
            cause=("adjustment_key", key),
        )
    return Posting(move, entry, ledger.hold(session, user_id).balance)


def expire(session: Session, *, user_id: int, points: int, key: str, now: datetime, cutoff: str, year: int) -> int:
    """Lapse up to `points` of the resident's old points into the expiry sink, with the entry;
    returns what lapsed (once per `key`)."""
    move = ledger.transfer(
        session,
        source=ledger.resident(user_id),
        target=ledger.sink("expiry"),
        amount=points,
        kind="expiry",
        key=key,
        now=now,
        cause=("expiry", year),
        partial=True,
    )
    if move.replayed or move.transfer is None:
        return 0
    archive.append(
        session,
        user_id=user_id,
        kind="expiry",
        occurred_at=now,
        now=now,
        summary=f"积分到期：{cutoff} 前获得的积分 {move.moved} 分已过期",
        points=-move.moved,
        details={"cutoff": cutoff},
        transfer_id=move.transfer.id,
        cause=("expiry", year),
    )
    return move.moved


def record(
    session: Session, *, move: ledger.Move | None, user_id: int, now: datetime, actor_id: int | None, **entry: Any
) -> ArchiveEntry:
    """The one way a movement of a resident's points reaches their archive: the entry naming its
    transfer and, when the movement credited the resident, the debts it pays first (each with an
    entry of its own). Services that credit a resident record through here, never around it."""
    transfer = move.transfer if move is not None else None
    written = archive.append(
        session, user_id=user_id, now=now, transfer_id=transfer.id if transfer is not None else None, **entry
    )
    if transfer is not None and not move.replayed and transfer.to_account_id == ledger.hold(session, user_id).id:
        pay_debts(session, user_id=user_id, key=transfer.idempotency_key, now=now, actor_id=actor_id)
    return written


def pay_debts(session: Session, *, user_id: int, key: str, now: datetime, actor_id: int | None) -> list[ArchiveEntry]:
    """After a credit (`key`), pay the resident's open debts first, each with its archive entry
    (`record` calls this for every credit it writes). No statement when there is no debt."""
    written = []
    for paid in ledger.pay_debts(session, ledger.hold(session, user_id).id, key=key, now=now, actor_id=actor_id):
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


def _entry(session: Session, cause_type: str, cause_id: str) -> ArchiveEntry | None:
    return session.scalar(
        sa.select(ArchiveEntry).where(ArchiveEntry.cause_type == cause_type, ArchiveEntry.cause_id == cause_id)
    )


def issuer_region(actor: User, resident: User, role: str = "admin") -> Region:
    """The most specific region over `resident` in which `actor` holds `role` (who awards)."""
    ids = {scope_id for scope_type, scope_id in actor.grant_keys(role) if scope_type == "region"}
    chain = [rid for rid in reversed(resident.region.ancestor_ids) if rid in ids]
    if not chain:
        raise NotFound("not_a_resident")
    return db.session.get(Region, chain[0])
