"""The ledger: the only writer of point balances.

Double entry: every movement is one immutable `Transfer` of a positive amount from one account to
another, with a unique idempotency key. The caller's unit of work covers it (this module never
commits). Accounts are locked in id order before anything is read (row locks on PostgreSQL; on
SQLite the write transaction began with BEGIN IMMEDIATE), then a repeat of a key returns the
first transfer, and a resident's balance moves only by a guarded UPDATE, so it cannot go below
zero even if a lock were missed; the CHECK constraint is the last word.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.errors import Conflict, Invalid
from points.models import Account, Debt, Transfer

SINKS = {"expiry": 1}


@dataclass
class Move:
    transfer: Transfer | None
    moved: int
    unpaid: int = 0
    replayed: bool = False


def _ensure(session: Session, kind: str, owner_type: str, owner_id: int) -> int:
    """The id of the account, created if missing (safe when two transactions race to create it)."""
    found = session.scalar(
        sa.select(Account.id).where(
            Account.kind == kind, Account.owner_type == owner_type, Account.owner_id == owner_id
        )
    )
    if found is not None:
        return found
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(Account)
        .values(kind=kind, owner_type=owner_type, owner_id=owner_id, balance=0)
        .on_conflict_do_nothing(index_elements=["kind", "owner_type", "owner_id"])
    )
    return session.scalar(
        sa.select(Account.id).where(
            Account.kind == kind, Account.owner_type == owner_type, Account.owner_id == owner_id
        )
    )


def resident_account(session: Session, user_id: int) -> int:
    return _ensure(session, "resident", "user", user_id)


def issuer_account(session: Session, owner_type: str, owner_id: int) -> int:
    if owner_type not in ("department", "region"):
        raise ValueError(f"an issuer is a department or a region, not {owner_type!r}")
    return _ensure(session, "issuer", owner_type, owner_id)


def store_account(session: Session, store_id: int) -> int:
    return _ensure(session, "store", "store", store_id)


def sink_account(session: Session, name: str) -> int:
    return _ensure(session, "sink", "system", SINKS[name])


def lock(session: Session, *account_ids: int) -> dict[int, Account]:
    """Lock the accounts (id order, so two transfers never deadlock) and read them fresh."""
    ids = sorted(set(account_ids))
    query = sa.select(Account).where(Account.id.in_(ids)).order_by(Account.id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {a.id: a for a in session.scalars(query)}


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def transfer(
    session: Session,
    *,
    source: int,
    target: int,
    amount: int,
    kind: str,
    key: str,
    now: datetime,
    actor_id: int | None = None,
    cause: tuple[str, Any] | None = None,
    details: dict | None = None,
    reverses_id: int | None = None,
    partial: bool = False,
) -> Move:
    """Move `amount` points from account `source` to account `target`, once per `key`.

    A resident source without enough points raises `insufficient_points`, unless `partial`: then
    what there is moves and the rest is reported as unpaid (a deduction never makes a debt).
    A repeat of `key` with the same content returns the first transfer; with other content it is
    a conflict.
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise Invalid("amount_invalid")
    if not session.info.get("uow_depth"):
        raise RuntimeError("ledger.transfer must run inside a unit of work")
    cause_type, cause_id = (cause[0], str(cause[1])) if cause else (None, None)
    print_ = fingerprint(source, target, amount, kind, cause_type, cause_id, reverses_id)
    accounts = lock(session, source, target)

    existing = session.scalar(sa.select(Transfer).where(Transfer.idempotency_key == key))
    if existing is not None:
        if existing.fingerprint != print_:
            raise Conflict("idempotency_conflict")
        unpaid = int((existing.details or {}).get("unpaid", 0))
        return Move(existing, existing.amount, unpaid, replayed=True)

    moved = amount
    if accounts[source].kind == "resident":
        if partial:
            moved = min(amount, accounts[source].balance)
        if moved > 0:
            taken = session.execute(
                sa.update(Account)
                .where(Account.id == source, Account.balance >= moved)
                .values(balance=Account.balance - moved)
            ).rowcount
            if taken != 1:
                raise Invalid("insufficient_points")
    else:
        session.execute(sa.update(Account).where(Account.id == source).values(balance=Account.balance - moved))
    if moved == 0:
        return Move(None, 0, unpaid=amount)
    session.execute(sa.update(Account).where(Account.id == target).values(balance=Account.balance + moved))
    extra = dict(details or {})
    if moved != amount:
        extra.update(requested=amount, unpaid=amount - moved)
    row = Transfer(
        amount=moved,
        from_account_id=source,
        to_account_id=target,
        kind=kind,
        idempotency_key=key,
        fingerprint=print_,
        cause_type=cause_type,
        cause_id=cause_id,
        actor_id=actor_id,
        reverses_id=reverses_id,
        details=extra or None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    for account in accounts.values():
        session.expire(account)
    return Move(row, moved, amount - moved)


def reverse(
    session: Session,
    original: Transfer,
    *,
    key: str,
    now: datetime,
    actor_id: int | None,
    reason: str,
    cause: tuple[str, Any] | None = None,
) -> Move:
    """Undo `original` in full by a new transfer the other way (never an edit).

    A resident who already spent the points gives back what they hold; the rest becomes a `Debt`
    to the original payer that later credits pay first (`pay_debts`), so a correction never leaves
    points that no service earned. `Move.unpaid` says how much became debt.
    """
    if session.scalar(sa.select(Debt.id).where(Debt.original_transfer_id == original.id)) is not None:
        done = session.scalar(sa.select(Transfer).where(Transfer.reverses_id == original.id))
        if done is not None and done.idempotency_key != key:
            raise Conflict("already_reversed")
        unpaid = int((done.details or {}).get("unpaid", 0)) if done else original.amount
        return Move(done, done.amount if done else 0, unpaid, replayed=True)
    already = session.scalar(sa.select(Transfer).where(Transfer.reverses_id == original.id))
    if already is not None and already.idempotency_key != key:
        raise Conflict("already_reversed")
    move = transfer(
        session,
        source=original.to_account_id,
        target=original.from_account_id,
        amount=original.amount,
        kind="reversal",
        key=key,
        now=now,
        actor_id=actor_id,
        cause=cause or (original.cause_type, original.cause_id) if original.cause_type else cause,
        details={"reason": reason, "reverses": original.id},
        reverses_id=original.id,
        partial=True,
    )
    if move.unpaid and not move.replayed:
        session.add(
            Debt(
                account_id=original.to_account_id,
                creditor_account_id=original.from_account_id,
                original_transfer_id=original.id,
                amount=move.unpaid,
                repaid=0,
                created_at=now,
            )
        )
        session.execute(
            sa.update(Account).where(Account.id == original.to_account_id).values(debt=Account.debt + move.unpaid)
        )
        session.flush()
    return move


@dataclass
class Repayment:
    debt: Debt
    transfer: Transfer
    amount: int


def pay_debts(session: Session, account_id: int, *, key: str, now: datetime, actor_id: int | None) -> list[Repayment]:
    """Pay the account's open debts, oldest first, from what it holds now (after a credit `key`).

    Each payment is a `reversal` transfer to the debt's creditor keyed by the debt and the credit
    that paid it, so a repeat of the credit never pays twice. Locks the account first."""
    account = lock(session, account_id)[account_id]
    if account.debt <= 0 or account.balance <= 0:
        return []
    paid: list[Repayment] = []
    debts = session.scalars(
        sa.select(Debt).where(Debt.account_id == account_id, Debt.repaid < Debt.amount).order_by(Debt.id)
    ).all()
    available = account.balance
    for debt in debts:
        if available <= 0:
            break
        amount = min(debt.amount - debt.repaid, available)
        move = transfer(
            session,
            source=account_id,
            target=debt.creditor_account_id,
            amount=amount,
            kind="reversal",
            key=f"debt:{debt.id}:{key}",
            now=now,
            actor_id=actor_id,
            cause=("debt", debt.id),
            details={"debt": debt.id, "repays": debt.original_transfer_id},
        )
        if move.replayed:
            continue
        session.execute(sa.update(Debt).where(Debt.id == debt.id).values(repaid=Debt.repaid + amount))
        session.execute(sa.update(Account).where(Account.id == account_id).values(debt=Account.debt - amount))
        available -= amount
        paid.append(Repayment(debt, move.transfer, amount))
    session.expire(account)
    return paid


def balance(session: Session, user_id: int) -> int:
    value = session.scalar(
        sa.select(Account.balance).where(
            Account.kind == "resident", Account.owner_type == "user", Account.owner_id == user_id
        )
    )
    return int(value or 0)


def invariant_problems(session: Session) -> list[str]:
    """Everything that would be wrong with the ledger: empty when it is sound."""
    problems = []
    total = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0)))
    if total != 0:
        problems.append(f"balances sum to {total}, not 0")
    incoming = sa.select(Transfer.to_account_id.label("id"), Transfer.amount.label("delta"))
    outgoing = sa.select(Transfer.from_account_id.label("id"), (-Transfer.amount).label("delta"))
    moves = sa.union_all(incoming, outgoing).subquery()
    sums = sa.select(moves.c.id, sa.func.sum(moves.c.delta).label("total")).group_by(moves.c.id).subquery()
    mismatched = session.execute(
        sa.select(Account.id, Account.balance, sums.c.total)
        .outerjoin(sums, sums.c.id == Account.id)
        .where(Account.balance != sa.func.coalesce(sums.c.total, 0))
    ).all()
    problems += [f"account {a} caches {b} but its transfers sum to {t or 0}" for a, b, t in mismatched]
    negative = session.scalars(sa.select(Account.id).where(Account.kind == "resident", Account.balance < 0)).all()
    problems += [f"resident account {a} is negative" for a in negative]
    open_debts = (
        sa.select(Debt.account_id.label("id"), sa.func.sum(Debt.amount - Debt.repaid).label("owed"))
        .group_by(Debt.account_id)
        .subquery()
    )
    wrong_debt = session.execute(
        sa.select(Account.id, Account.debt, open_debts.c.owed)
        .outerjoin(open_debts, open_debts.c.id == Account.id)
        .where(Account.debt != sa.func.coalesce(open_debts.c.owed, 0))
    ).all()
    problems += [f"account {a} caches a debt of {d} but its open debts sum to {o or 0}" for a, d, o in wrong_debt]
    hoarding = session.scalars(
        sa.select(Account.id).where(Account.kind == "resident", Account.debt > 0, Account.balance > 0)
    ).all()
    problems += [f"resident account {a} holds points while it owes a debt" for a in hoarding]
    return problems
