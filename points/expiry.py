"""Annual expiry (optional per region): on the settlement date, points earned before the previous
year lapse, oldest first, as expiry transfers to the system sink. Idempotent per resident and year.

Oldest first means spending consumes the oldest points: what lapses is what was earned before the
cut-off minus everything that has left the account since (spent, deducted, expired before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from community.models import Region, User
from core.db import db, unit_of_work
from points import archive, ledger, policies
from points.models import Account, Transfer


@dataclass
class Lapse:
    points: int
    cutoff: date
    settles_on: date


def cutoff_for(settlement: date) -> date:
    """Points earned before 1 January of the year before the settlement year lapse."""
    return date(settlement.year - 1, 1, 1)


def lapsing(session, user_id: int, cutoff: date) -> int:
    account_id = ledger.resident_account(session, user_id)
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    cut = datetime.combine(cutoff, time.min, tzinfo=zone).astimezone(UTC)
    earned_before = (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount), 0)).where(
                Transfer.to_account_id == account_id, Transfer.created_at < cut
            )
        )
        or 0
    )
    gone = (
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount), 0)).where(Transfer.from_account_id == account_id)
        )
        or 0
    )
    balance = session.scalar(sa.select(Account.balance).where(Account.id == account_id)) or 0
    return max(0, min(int(earned_before) - int(gone), int(balance)))


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


def apply(*, now: datetime) -> int:
    """For every region whose settlement day is today (local time), lapse old points. Idempotent."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    today = now.astimezone(zone).date()
    lapsed = 0
    users = db.session.execute(sa.select(User.id, User.region_id)).all()
    regions: dict[int, Region] = {}
    for user_id, region_id in users:
        region = regions.get(region_id) or db.session.get(Region, region_id)
        regions[region_id] = region
        policy = policies.policy_for(db.session, region)
        if policy.expiry != "annual" or (today.month, today.day) != (policy.settlement_month, policy.settlement_day):
            continue
        cutoff = cutoff_for(today)
        with unit_of_work() as session:
            points = lapsing(session, user_id, cutoff)
            if points <= 0:
                continue
            move = ledger.transfer(
                session,
                source=ledger.resident_account(session, user_id),
                target=ledger.sink_account(session, "expiry"),
                amount=points,
                kind="expiry",
                key=f"expiry:{user_id}:{today.year}",
                now=now,
                cause=("expiry", today.year),
                partial=True,
            )
            if not move.replayed and move.transfer is not None:
                archive.append(
                    session,
                    user_id=user_id,
                    kind="expiry",
                    occurred_at=now,
                    now=now,
                    summary=f"积分到期：{cutoff.isoformat()} 前获得的积分 {move.moved} 分已过期",
                    points=-move.moved,
                    details={"cutoff": cutoff.isoformat()},
                    transfer_id=move.transfer.id,
                    cause=("expiry", today.year),
                )
                lapsed += move.moved
    return lapsed
