"""Annual expiry (optional per region): on the settlement date, points earned before the previous
year lapse, oldest first, as expiry transfers to the system sink. Idempotent per resident and year.

Oldest first means spending consumes the oldest points: what lapses is what was earned before the
cut-off minus everything that has left the account since (spent, deducted, expired before). Each
movement counts net of the reversals that undo it, whenever they happened: a redemption voided the
same day spent nothing, and a credit taken back by a correction earned nothing. Days are local days
(core.clock); expiry never takes a resident below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from community.models import Region, User
from core import clock
from core.db import batch_size, db, keyset_pages, unit_of_work
from points import awards, ledger, policies
from points.models import Account, ArchiveEntry, Transfer


@dataclass
class Lapse:
    points: int
    cutoff: date
    settles_on: date


def cutoff_for(settlement: date) -> date:
    """Points earned before 1 January of the year before the settlement year lapse."""
    return date(settlement.year - 1, 1, 1)


def _net_total(session, *conditions) -> int:
    """The sum of the matching transfers, each less what the reversals pointing at it gave back.
    Reversals themselves are left out: they only ever cancel the movement they name."""
    undo = aliased(Transfer)
    given_back = (
        sa.select(sa.func.coalesce(sa.func.sum(undo.amount), 0))
        .where(undo.reverses_id == Transfer.id)
        .scalar_subquery()
    )
    total = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount - given_back), 0)).where(
            Transfer.reverses_id.is_(None), *conditions
        )
    )
    return int(total or 0)


def lapsing(session, user_id: int, cutoff: date) -> int:
    account_id = ledger.resident_account(session, user_id)
    cut = clock.day_start(cutoff)
    # Points count as earned when the service or deed they record took place (the archive entry's
    # date), not when they were booked: a correction that re-credits old service today does not
    # make old points young again.
    earned_at = sa.func.coalesce(
        sa.select(sa.func.min(ArchiveEntry.occurred_at))
        .where(ArchiveEntry.transfer_id == Transfer.id)
        .correlate(Transfer)
        .scalar_subquery(),
        Transfer.created_at,
    )
    earned_before = _net_total(session, Transfer.to_account_id == account_id, earned_at < cut)
    gone = _net_total(session, Transfer.from_account_id == account_id)
    balance = session.scalar(sa.select(Account.balance).where(Account.id == account_id)) or 0
    return max(0, min(earned_before - gone, int(balance)))


def next_lapse(user: User, today: date) -> Lapse | None:
    """What will lapse at the next settlement, for the resident's page; None if no expiry applies."""
    policy = policies.policy_for(db.session, user.region)
    if policy.expiry != "annual":
        return None
    settles = date(today.year, policy.settlement_month, policy.settlement_day)
    if settles < today:
        settles = date(today.year + 1, policy.settlement_month, policy.settlement_day)
    cutoff = cutoff_for(settles)
    return Lapse(lapsing(db.session, user.id, cutoff), cutoff, settles)


def apply(*, now: datetime, size: int | None = None) -> int:
    """For every region whose settlement day is today (local time), lapse old points. Idempotent.

    Residents are walked in pages of `size` (keyset by id; only those holding points, the only ones
    with anything to lapse), each page settled in one unit of work that locks its residents in id
    order: a city's 1.2M residents pass in bounded memory, a few thousand per transaction."""
    today = clock.today(now)
    cutoff = cutoff_for(today)
    lapsed = 0
    settles_today: dict[int, bool] = {}
    holders = (
        sa.select(User.id, User.region_id)
        .join(Account, sa.and_(Account.kind == "resident", Account.owner_type == "user", Account.owner_id == User.id))
        .where(Account.balance > 0)
    )
    for page in keyset_pages(db.session, holders, User.id, size=size or batch_size()):
        due = []
        for user_id, region_id in page:
            if region_id not in settles_today:
                policy = policies.policy_for(db.session, db.session.get(Region, region_id))
                settles_today[region_id] = policy.expiry == "annual" and (today.month, today.day) == (
                    policy.settlement_month,
                    policy.settlement_day,
                )
            if settles_today[region_id]:
                due.append(user_id)
        if not due:
            continue
        # Many residents in one transaction, locked in id order: every other writer holds at most one
        # resident (ledger.hold), so no two transactions can wait on each other in a cycle.
        with unit_of_work() as session:
            for user_id in due:
                lapsed += _lapse(session, user_id, cutoff=cutoff, now=now, year=today.year)
    return lapsed


def _lapse(session, user_id: int, *, cutoff: date, now: datetime, year: int) -> int:
    key = f"expiry:{user_id}:{year}"
    # Lock first, then count: a redemption or void racing the job waits for it.
    ledger.hold(session, user_id)
    if session.scalar(sa.select(Transfer.id).where(Transfer.idempotency_key == key)) is not None:
        return 0
    points = lapsing(session, user_id, cutoff)
    if points <= 0:
        return 0
    return awards.expire(
        session, user_id=user_id, points=points, key=key, now=now, cutoff=cutoff.isoformat(), year=year
    )
