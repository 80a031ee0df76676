"""The stock ledger: the only writer of an item's stock.

Every change is one immutable `StockMovement`; the cached `item.stock` moves only by a guarded
UPDATE (`... WHERE stock + :delta >= 0`), so stock can never go below zero, even under concurrent
redemptions on SQLite where row locks do not exist. This module never commits.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.bounds import STOCK_MAX
from core.errors import Invalid
from exchange.models import Item, StockMovement


def move(
    session: Session,
    *,
    item_id: int,
    delta: int,
    kind: str,
    now: datetime,
    actor_id: int | None = None,
    donor: str | None = None,
    note: str | None = None,
    counted: int | None = None,
    redemption_id: int | None = None,
    idempotency_key: str | None = None,
) -> StockMovement:
    if not session.info.get("uow_depth"):
        raise RuntimeError("inventory.move must run inside a unit of work")
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise Invalid("stock_delta_invalid", errors={"delta": ["数量须为非零整数"]})
    stock_after = session.scalar(
        sa.update(Item)
        .where(Item.id == item_id, Item.stock + delta >= 0, Item.stock + delta <= STOCK_MAX)
        .values(stock=Item.stock + delta)
        .returning(Item.stock)
    )
    if stock_after is None:
        stock = session.scalar(sa.select(Item.stock).where(Item.id == item_id))
        if stock is None:
            raise Invalid("item_not_found")
        if stock + delta > STOCK_MAX:
            raise Invalid("stock_too_large", errors={"delta": [f"库存不能超过 {STOCK_MAX:,} 件"]})
        raise Invalid("out_of_stock")
    movement = StockMovement(
        item_id=item_id,
        delta=delta,
        stock_after=stock_after,
        kind=kind,
        donor=donor,
        note=note,
        counted=counted,
        redemption_id=redemption_id,
        actor_id=actor_id,
        idempotency_key=idempotency_key,
        created_at=now,
    )
    session.add(movement)
    session.flush()
    return movement


def take(
    session: Session,
    wanted: dict[int, int],
    *,
    now: datetime,
    actor_id: int,
    redemption_id: int,
    names: dict[int, str] | None = None,
) -> None:
    """Take a basket's goods out of stock, all or nothing: one guarded UPDATE for every line (so the
    statements do not grow with the basket), then one movement per item. Out of stock → 422
    `out_of_stock` naming nothing else changed (the caller's unit of work rolls back)."""
    if not session.info.get("uow_depth"):
        raise RuntimeError("inventory.take must run inside a unit of work")
    ids = sorted(wanted)
    qty = sa.case(wanted, value=Item.id)
    after = dict(
        session.execute(
            sa.update(Item)
            .where(Item.id.in_(ids), Item.stock >= qty)
            .values(stock=Item.stock - qty)
            .returning(Item.id, Item.stock)
            .execution_options(synchronize_session=False)
        ).all()
    )
    if len(after) != len(ids):
        short = "、".join(f"「{(names or {}).get(i, i)}」" for i in ids if i not in after)
        raise Invalid("out_of_stock", f"{short}库存不足", errors={"lines": [f"{short}库存不足"]})
    movements = [
        {
            "item_id": item_id,
            "delta": -wanted[item_id],
            "stock_after": after[item_id],
            "kind": "redemption",
            "redemption_id": redemption_id,
            "actor_id": actor_id,
            "created_at": now,
        }
        for item_id in ids
    ]
    session.execute(sa.insert(StockMovement), movements)  # one statement for the whole basket


def invariant_problems(session: Session) -> list[str]:
    """Items whose cached stock is not the sum of their movements, or is negative."""
    sums = (
        sa.select(StockMovement.item_id, sa.func.sum(StockMovement.delta).label("total"))
        .group_by(StockMovement.item_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(Item.id, Item.stock, sums.c.total)
        .outerjoin(sums, sums.c.item_id == Item.id)
        .where(sa.or_(Item.stock != sa.func.coalesce(sums.c.total, 0), Item.stock < 0))
    ).all()
    return [f"item {i} caches stock {s} but its movements sum to {t or 0}" for i, s, t in rows]
