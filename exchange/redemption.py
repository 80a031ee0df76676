"""Redemption at the counter: points for goods, all or nothing, once per Idempotency-Key.

One unit of work: lock the resident's and the store's ledger accounts (through the ledger), find a
redemption already made with this key (a double click, a refresh, a retry: return it), check the
monthly limits, move the points (insufficient → 422), take each item's stock in id order through
the stock ledger (out of stock → 422), write the order, its lines and the archive entry. Any
refusal rolls the whole thing back. Voids refund the points and restore the stock by new entries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from community import accounts
from community.models import User
from core import audit, clock
from core.db import db, unit_of_work
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.security import authorize, covers
from exchange import inventory, notices, queries
from exchange.models import Item, Redemption, RedemptionLine, Store
from exchange.stores import get_store
from points import awards, duties

MAX_QTY = 99


@dataclass
class Line:
    item_id: int
    qty: int


def resolve_resident(store: Store, *, code: str | None, resident_id: int | None, now: datetime) -> tuple[User, str]:
    """Who the basket is for, and how the clerk identified them (`code` or `lookup`).

    A valid personal code identifies anyone: the resident is at the counter and shows it. A bare
    `resident_id` (picked from a name search) only identifies a resident the store serves; any
    other id, unknown or outside the store's region alike, is 422 `code_required`, so the answer
    reveals nothing about people elsewhere and tells the clerk what to do: scan their code.
    """
    if code:
        return accounts.resolve_personal_code(code, now, with_roles=True), "code"
    if resident_id:
        user = queries.served_resident(store, resident_id)
        if user is None:
            raise Invalid("code_required", errors={"code": ["本店服务范围内找不到该居民，请扫描其会员码"]})
        return user, "lookup"
    raise Invalid("resident_required", errors={"code": ["请扫描居民会员码或选择居民"]})


def _merge(lines: list[Line]) -> dict[int, int]:
    merged: Counter[int] = Counter()
    for line in lines:
        if not isinstance(line.qty, int) or line.qty <= 0 or line.qty > MAX_QTY:
            raise Invalid(errors={"lines": [f"数量须为 1–{MAX_QTY} 的整数"]})
        merged[line.item_id] += line.qty
    if not merged:
        raise Invalid("basket_empty", errors={"lines": ["请选择要兑换的商品"]})
    return dict(merged)


def redeem(
    *,
    actor: User,
    store_id: int,
    lines: list[Line],
    key: str,
    now: datetime,
    code: str | None = None,
    resident_id: int | None = None,
) -> Redemption:
    store = get_store(store_id)
    authorize(actor, "clerk", store)
    wanted = _merge(lines)
    resident, identified_by = resolve_resident(store, code=code, resident_id=resident_id, now=now)
    duties.require_not_beneficiary(actor, resident)
    # A colleague redeeming for someone who is a clerk somewhere: allowed, but marked for review.
    flagged = resident.has_role("clerk")
    full_key = f"redemption:{store.id}:{actor.id}:{key}"
    with unit_of_work() as session:
        awards.hold(session, resident.id)  # first: a repeat of the key in flight waits, then finds it
        done = session.scalar(sa.select(Redemption).where(Redemption.idempotency_key == full_key))
        if done is not None:
            if done.resident_id != resident.id or Counter({ln.item_id: ln.qty for ln in done.lines}) != wanted:
                raise Conflict("idempotency_conflict")
            return done
        # Locked in id order (PostgreSQL): two baskets never wait on each other in a cycle, and the
        # guarded stock UPDATE below finds the rows already ours.
        items = {
            i.id: i
            for i in session.scalars(
                sa.select(Item)
                .where(Item.id.in_(wanted))
                .order_by(Item.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        }
        for item_id in wanted:
            item = items.get(item_id)
            if item is None or item.store_id != store.id:
                raise Invalid("item_not_found", errors={"lines": [f"商品 {item_id} 不在本店"]})
            if not item.active:
                raise Invalid("item_inactive", errors={"lines": [f"「{item.name}」已下架"]})
        _check_monthly_limits(session, resident.id, items, wanted, now)
        total = sum(items[i].points_price * q for i, q in wanted.items())
        paid = awards.debit_redemption(
            session, user_id=resident.id, store_id=store.id, amount=total, key=full_key, now=now, actor_id=actor.id
        )
        redemption = Redemption(
            store_id=store.id,
            resident_id=resident.id,
            clerk_id=actor.id,
            idempotency_key=full_key,
            total_points=total,
            balance_after=paid.balance_after,
            transfer_id=paid.transfer_id,
            flagged=flagged,
            identified_by=identified_by,
            created_at=now,
        )
        session.add(redemption)
        session.flush()
        goods = "、".join(f"{items[i].name}×{q}" for i, q in sorted(wanted.items()))
        awards.record(
            session,
            move=paid.move,
            actor_id=actor.id,
            user_id=resident.id,
            kind="redemption",
            occurred_at=now,
            now=now,
            summary=f"道德超市兑换：{goods}（{store.name}）",
            points=-total,
            details={
                "redemption_id": redemption.id,
                "store": store.name,
                "lines": [[items[i].name, q, items[i].points_price] for i, q in sorted(wanted.items())],
            },
            cause=("redemption", redemption.id),
        )
        lines = [
            {
                "redemption_id": redemption.id,
                "item_id": item_id,
                "name": items[item_id].name,
                "unit": items[item_id].unit,
                "qty": wanted[item_id],
                "unit_points": items[item_id].points_price,
            }
            for item_id in sorted(wanted)
        ]
        session.execute(sa.insert(RedemptionLine), lines)  # one statement however long the basket
        names = {i: item.name for i, item in items.items()}
        inventory.take(session, wanted, now=now, actor_id=actor.id, redemption_id=redemption.id, names=names)
        audit.record(
            "redemption.create",
            "redemption",
            redemption.id,
            actor=actor,
            after={
                "resident_id": resident.id,
                "total": total,
                "lines": wanted,
                "identified_by": identified_by,
                "flagged": flagged,
            },
            region_id=store.region_id,
            now=now,
        )
        notices.redeemed(session, redemption, store, goods, now=now)
        # The response reads these from memory: no reload after the commit.
        set_committed_value(redemption, "lines", [RedemptionLine(**line) for line in lines])
        set_committed_value(redemption, "resident", resident)
    return redemption


def _check_monthly_limits(
    session, resident_id: int, items: dict[int, Item], wanted: dict[int, int], now: datetime
) -> None:
    limited = [i for i in wanted if items[i].monthly_limit]
    if not limited:
        return
    month_start = clock.month_start(now)
    taken = dict(
        session.execute(
            sa.select(RedemptionLine.item_id, sa.func.sum(RedemptionLine.qty))
            .join(Redemption, Redemption.id == RedemptionLine.redemption_id)
            .where(
                Redemption.resident_id == resident_id,
                Redemption.status == "completed",
                Redemption.created_at >= month_start,
                RedemptionLine.item_id.in_(limited),
            )
            .group_by(RedemptionLine.item_id)
        ).all()
    )
    for item_id in limited:
        item = items[item_id]
        if (taken.get(item_id) or 0) + wanted[item_id] > item.monthly_limit:
            left = max(0, item.monthly_limit - (taken.get(item_id) or 0))
            detail = f"「{item.name}」每人每月限兑 {item.monthly_limit}{item.unit}，本月还可兑 {left}{item.unit}"
            raise Invalid("monthly_limit", detail, errors={"lines": [detail]})


def void(*, actor: User, redemption_id: int, reason: str, now: datetime, code: str | None = None) -> Redemption:
    """Undo a redemption: a clerk of the store the same day, an admin of its region any time.

    The basket was paid at creation, so undoing it takes a second witness: the resident's personal
    code again (`code`), or an admin of the store's region who did not make the redemption. The
    refund goes to the resident: nobody voids for themselves or their household.
    """
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", errors={"reason": ["请填写撤销原因"]})
    with unit_of_work() as session:
        authorize(actor, ("clerk", "admin"))
        redemption = session.get(Redemption, redemption_id, populate_existing=True, with_for_update=True)
        if redemption is None:
            raise NotFound()
        authorize(actor, ("clerk", "admin"), redemption, hide=True)
        if redemption.status == "voided":
            raise Conflict("already_voided")
        is_admin = covers(actor, "admin", redemption)
        today, _ = clock.bounds_of(now)
        if not is_admin and redemption.created_at < today:
            raise Forbidden("void_too_late")
        duties.require_not_beneficiary(actor, redemption.resident)
        confirmed_by = "admin" if is_admin and actor.id != redemption.clerk_id else "code"
        if confirmed_by == "code":
            _require_code_of(redemption.resident_id, code, now)
        back = awards.refund(
            session,
            transfer_id=redemption.transfer_id,
            user_id=redemption.resident_id,
            key=f"void:{redemption.id}",
            reason=reason,
            now=now,
            actor_id=actor.id,
            summary=f"撤销兑换（小票 {redemption.receipt_no}）：{reason}",
            details={"redemption_id": redemption.id, "reason": reason},
            cause=("redemption", redemption.id),
            entry_cause=("void", redemption.id),
        )
        for line in redemption.lines:
            inventory.move(
                session,
                item_id=line.item_id,
                delta=line.qty,
                kind="void",
                now=now,
                actor_id=actor.id,
                redemption_id=redemption.id,
                note=reason[:255],
            )
        redemption.status, redemption.voided_at, redemption.voided_by_id = "voided", now, actor.id
        redemption.void_reason, redemption.void_transfer_id = reason[:255], back.transfer_id
        audit.record(
            "redemption.void",
            "redemption",
            redemption.id,
            actor=actor,
            before={"status": "completed"},
            after={"status": "voided", "reason": reason, "confirmed_by": confirmed_by},
            region_id=redemption.store.region_id,
            now=now,
        )
        notices.voided(session, redemption, redemption.store, back.move.moved, now=now)
    return redemption


def _require_code_of(resident_id: int, code: str | None, now: datetime) -> None:
    """A clerk's void needs the resident's valid current personal code (422 otherwise)."""
    if not (code or "").strip():
        raise Invalid("code_required", errors={"code": ["撤销需要扫描该居民的会员码（或由管理员撤销）"]})
    if accounts.resolve_personal_code(code.strip(), now).id != resident_id:
        raise Invalid("code_mismatch", errors={"code": ["这不是该笔兑换居民的会员码"]})


def day_report(store: Store, day_start: datetime, day_end: datetime) -> dict:
    rows = db.session.scalars(
        sa.select(Redemption)
        .where(Redemption.store_id == store.id, Redemption.created_at >= day_start, Redemption.created_at < day_end)
        .order_by(Redemption.id)
    ).all()
    completed = [r for r in rows if r.status == "completed"]
    goods: Counter[str] = Counter()
    for r in completed:
        for line in r.lines:
            goods[f"{line.name}（{line.unit}）"] += line.qty
    return {
        "redemptions": len(completed),
        "points": sum(r.total_points for r in completed),
        "goods": sum(goods.values()),
        "voids": len(rows) - len(completed),
        "flagged": sum(1 for r in rows if r.flagged),
        "by_item": dict(goods),
        "rows": rows,
    }
