"""The ledger: the only writer of point balances.

Double entry: every movement is one immutable `Transfer` of a positive amount from one account to
another, with a unique idempotency key. The caller's unit of work covers it (this module never
commits). A resident's account is held (`hold`: locked and read once per transaction, a row lock
on PostgreSQL; on SQLite the write transaction began with BEGIN IMMEDIATE) before anything about
it is read; system accounts (issuers, stores, sinks) have no floor and are only updated, at commit. A repeat
of a key returns the first transfer, and a resident's balance moves only by a guarded UPDATE, so
it cannot go below zero even if a lock were missed; the CHECK constraint is the last word.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.db import insert_if_absent
from core.errors import Conflict, Invalid
from points.models import Account, Debt, Transfer

SINKS = {"expiry": 1}
RESIDENT = "resident"
_HELD = "ledger_held"  # session.info: the resident accounts this transaction has locked, by user id
_PENDING = "ledger_pending"  # session.info: system accounts' balance changes, applied at commit


@dataclass(frozen=True)
class Ref:
    """An account named by its owner; `transfer` finds (or opens) it."""

    kind: str
    owner_type: str
    owner_id: int


def resident(user_id: int) -> Ref:
    return Ref(RESIDENT, "user", user_id)


def issuer(owner_type: str, owner_id: int) -> Ref:
    if owner_type not in ("department", "region"):
        raise ValueError(f"an issuer is a department or a region, not {owner_type!r}")
    return Ref("issuer", owner_type, owner_id)


def store(store_id: int) -> Ref:
    return Ref("store", "store", store_id)


def sink(name: str) -> Ref:
    return Ref("sink", "system", SINKS[name])


@dataclass
class Move:
    transfer: Transfer | None
    moved: int
    unpaid: int = 0
    replayed: bool = False


def _where(ref: Ref) -> tuple[Any, ...]:
    return (Account.kind == ref.kind, Account.owner_type == ref.owner_type, Account.owner_id == ref.owner_id)


def _open(session: Session, ref: Ref, *, returning: bool = False) -> Account | None:
    return insert_if_absent(
        session,
        Account,
        {"kind": ref.kind, "owner_type": ref.owner_type, "owner_id": ref.owner_id, "balance": 0},
        ("kind", "owner_type", "owner_id"),
        returning=returning,
    )


def account_id(session: Session, ref: Ref) -> int:
    """The id of the account (opened if missing; safe when two transactions race to open it).
    System accounts are never locked: only a resident's balance has a floor to guard."""
    held = session.info.get(_HELD, {})
    if ref.kind == RESIDENT and ref.owner_id in held:
        return held[ref.owner_id].id
    found = session.scalar(sa.select(Account.id).where(*_where(ref)))
    if found is None:
        _open(session, ref)
        found = session.scalar(sa.select(Account.id).where(*_where(ref)))
    return found


def resident_account(session: Session, user_id: int) -> int:
    return account_id(session, resident(user_id))


def issuer_account(session: Session, owner_type: str, owner_id: int) -> int:
    return account_id(session, issuer(owner_type, owner_id))


def store_account(session: Session, store_id: int) -> int:
    return account_id(session, store(store_id))


def sink_account(session: Session, name: str) -> int:
    return account_id(session, sink(name))


def hold(session: Session, user_id: int) -> Account:
    """Lock the resident's account for the rest of the transaction and read it fresh, once: later
    calls in the same transaction get the same object, which this module keeps equal to the row
    (every change to a held account goes through here while the lock is held).

    Lock order: a transaction holds at most one resident account, taken before it touches any
    system account (issuers, stores, sinks are only ever updated, never locked up front), so no two
    transactions wait on each other in a cycle."""
    held = session.info.setdefault(_HELD, {})
    if user_id in held:
        return held[user_id]
    if not session.info.get("uow_depth"):
        raise RuntimeError("ledger.hold must run inside a unit of work")
    query = (
        sa.select(Account).where(*_where(resident(user_id))).with_for_update().execution_options(populate_existing=True)
    )
    account = session.scalar(query)
    if account is None:
        # A first movement: the row this insert makes is the transaction's own until it commits (a
        # racing insert of the same owner waits on the unique index, then reads it here).
        account = _open(session, resident(user_id), returning=True) or session.scalar(query)
    held[user_id] = account
    return account


@event.listens_for(Session, "after_transaction_end")
def _release(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_HELD, None)
        session.info.pop(_PENDING, None)


def _defer(session: Session, account_id: int, delta: int) -> None:
    """Move a system account's balance at commit, not now: every credit of a department (every
    basket of a store) updates the same row, and its row lock is then held only for the commit,
    not for the whole transaction. System accounts have no floor, so nothing needs them earlier."""
    pending = session.info.setdefault(_PENDING, {})
    pending[account_id] = pending.get(account_id, 0) + delta


@event.listens_for(Session, "before_commit")
def _apply_deferred(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    for account_id in sorted(pending or ()):  # id order: two commits never wait in a cycle
        if pending[account_id]:
            session.execute(
                sa.update(Account)
                .execution_options(synchronize_session=False)
                .where(Account.id == account_id)
                .values(balance=Account.balance + pending[account_id])
            )


def lock(session: Session, *account_ids: int) -> dict[int, Account]:
    """The accounts by id, residents held (locked once per transaction, read fresh), the others
    read as they are."""
    ids = sorted(set(account_ids))
    held = {a.id: a for a in session.info.get(_HELD, {}).values()}
    rows = dict(held)
    missing = [i for i in ids if i not in held]
    if missing:
        for account in session.scalars(
            sa.select(Account).where(Account.id.in_(missing)).execution_options(populate_existing=True)
        ):
            rows[account.id] = hold(session, account.owner_id) if account.kind == RESIDENT else account
    return {i: rows[i] for i in ids}


def track(account: Account, **values: Any) -> None:
    """Keep a held account's object equal to its row after an UPDATE (no reload). The UPDATEs here
    do not touch objects in the session (synchronize_session=False): this is the one place that
    does, explicitly, and only for held accounts, whose rows nobody else can change meanwhile."""
    for name, value in values.items():
        set_committed_value(account, name, value)


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def transfer(
    session: Session,
    *,
    source: Ref | int,
    target: Ref | int,
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
    a conflict. A resident side is held (locked once per transaction); the guarded UPDATE and the
    CHECK constraint are the guarantee that a resident balance never goes below zero.
    """
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise Invalid("amount_invalid")
    if not session.info.get("uow_depth"):
        raise RuntimeError("ledger.transfer must run inside a unit of work")
    src, dst = _side(session, source), _side(session, target)
    cause_type, cause_id = (cause[0], str(cause[1])) if cause else (None, None)
    print_ = fingerprint(src.id, dst.id, amount, kind, cause_type, cause_id, reverses_id)

    moved = min(amount, src.account.balance) if src.account is not None and partial else amount
    if src.account is not None and src.account.balance < moved:
        # Told before anything is written (the held account is fresh); a repeat of a key that
        # was paid while the balance allowed it still gets its first transfer back.
        return _replayed(session, key, print_) or _refuse()
    if moved == 0:  # a deduction from an empty account moves nothing: unless the key was used
        return _replayed(session, key, print_) or Move(None, 0, unpaid=amount)
    extra = dict(details or {})
    if moved != amount:
        extra.update(requested=amount, unpaid=amount - moved)
    # The key is the database's to decide: the insert does nothing if it was used, and then this
    # is a repeat (nothing has moved yet). Only then do the balances move.
    row = insert_if_absent(
        session,
        Transfer,
        {
            "amount": moved,
            "from_account_id": src.id,
            "to_account_id": dst.id,
            "kind": kind,
            "idempotency_key": key,
            "fingerprint": print_,
            "cause_type": cause_type,
            "cause_id": cause_id,
            "actor_id": actor_id,
            "reverses_id": reverses_id,
            "details": extra or None,
            "created_at": now,
        },
        ("idempotency_key",),
        returning=True,
    )
    if row is None:
        return _replayed(session, key, print_)
    if src.account is not None:  # a resident pays: never below zero
        taken = session.execute(
            sa.update(Account)
            .execution_options(synchronize_session=False)
            .where(Account.id == src.id, Account.balance >= moved)
            .values(balance=Account.balance - moved)
        ).rowcount
        if taken != 1:
            raise Invalid("insufficient_points")
        track(src.account, balance=src.account.balance - moved)
    else:
        _defer(session, src.id, -moved)
    if dst.account is not None:
        session.execute(
            sa.update(Account)
            .execution_options(synchronize_session=False)
            .where(Account.id == dst.id)
            .values(balance=Account.balance + moved)
        )
        track(dst.account, balance=dst.account.balance + moved)
    else:
        _defer(session, dst.id, moved)
    return Move(row, moved, amount - moved)


def _refuse() -> Move:
    raise Invalid("insufficient_points")


def _replayed(session: Session, key: str, print_: str) -> Move | None:
    """The first transfer of `key` (a repeat gets it back), or None; other content is a conflict."""
    existing = session.scalar(sa.select(Transfer).where(Transfer.idempotency_key == key))
    if existing is None:
        return None
    if existing.fingerprint != print_:
        raise Conflict("idempotency_conflict")
    unpaid = int((existing.details or {}).get("unpaid", 0))
    return Move(existing, existing.amount, unpaid, replayed=True)


@dataclass
class _Side:
    id: int
    account: Account | None  # the held account when the side is a resident


def _side(session: Session, which: Ref | int) -> _Side:
    if isinstance(which, Ref):
        if which.kind == RESIDENT:
            account = hold(session, which.owner_id)
            return _Side(account.id, account)
        return _Side(account_id(session, which), None)
    account = lock(session, which)[which]
    return _Side(account.id, account if account.kind == RESIDENT else None)


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
            sa.update(Account)
            .execution_options(synchronize_session=False)
            .where(Account.id == original.to_account_id)
            .values(debt=Account.debt + move.unpaid)
        )
        debtor = lock(session, original.to_account_id)[original.to_account_id]
        track(debtor, debt=debtor.debt + move.unpaid)
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
        return []  # the held account knows: no statement for the common case
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
        session.execute(
            sa.update(Account)
            .execution_options(synchronize_session=False)
            .where(Account.id == account_id)
            .values(debt=Account.debt - amount)
        )
        track(account, debt=account.debt - amount)
        available -= amount
        paid.append(Repayment(debt, move.transfer, amount))
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
