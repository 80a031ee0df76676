"""Stores and their goods: creating stores, granting clerks, adding items, receiving stock
(purchases, donations with the donor's name) and stocktakes. Every write is audited."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from community import services as community_services
from community.models import User
from core import audit, uploads
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.idempotency import MAX_KEY
from core.security import authorize
from exchange import inventory
from exchange.models import Item, StockMovement, Store

STAFF = ("clerk", "admin")


def _store_resolver(session: Session, store_id: int) -> Store | None:
    return session.get(Store, store_id)


community_services.register_scope_resolver("store", _store_resolver)


def get_store(store_id: int) -> Store:
    """The store with its region (every scope check reads it), in one statement."""
    store = db.session.get(Store, store_id, options=[joinedload(Store.region, innerjoin=True)])
    if store is None:
        raise NotFound("store_not_found")
    return store


def create_store(
    *, actor: User | None, name: str, region_code: str, now: datetime, opening_hours: str | None = None
) -> Store:
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise Invalid(errors={"name": ["请填写超市名称（不超过 64 字）"]})
    try:
        with unit_of_work() as session:
            region = community_services.require_region(region_code)
            if actor is not None:
                authorize(actor, "admin", region)
            if session.scalar(sa.select(Store.id).where(Store.region_id == region.id, Store.name == name)):
                raise Conflict("store_taken")
            store = Store(name=name, region=region, opening_hours=opening_hours, created_at=now)
            session.add(store)
            session.flush()
            audit.record(
                "store.create",
                "store",
                store.id,
                actor=actor,
                after={"name": name, "region": region.code},
                region_id=region.id,
                now=now,
            )
    except IntegrityError as exc:
        raise Conflict("store_taken") from exc
    return store


def add_item(
    *,
    actor: User | None,
    store_id: int,
    name: str,
    unit: str,
    points_price: int,
    now: datetime,
    stock: int = 0,
    low_stock_threshold: int = 5,
    monthly_limit: int | None = None,
    category: str | None = None,
    picture: bytes | None = None,
) -> Item:
    errors: dict[str, list[str]] = {}
    name, unit = (name or "").strip(), (unit or "").strip()
    if not name or len(name) > 64:
        errors["name"] = ["请填写商品名称（不超过 64 字）"]
    if not unit or len(unit) > 16:
        errors["unit"] = ["请填写单位，如：瓶、袋、条"]
    if not isinstance(points_price, int) or points_price <= 0:
        errors["points_price"] = ["所需积分须为正整数"]
    if not isinstance(stock, int) or stock < 0:
        errors["stock"] = ["库存不能为负数"]
    if monthly_limit is not None and monthly_limit <= 0:
        errors["monthly_limit"] = ["每月限兑数量须为正整数"]
    if low_stock_threshold < 0:
        errors["low_stock_threshold"] = ["预警数量不能为负数"]
    if errors:
        raise Invalid(errors=errors)
    try:
        with unit_of_work() as session:
            store = get_store(store_id)
            if actor is not None:
                authorize(actor, STAFF, store, hide=True)
            if session.scalar(sa.select(Item.id).where(Item.store_id == store.id, Item.name == name)):
                raise Conflict("item_taken")
            actor_id = getattr(actor, "id", None)
            key = (
                uploads.store(picture, purpose="item", actor_id=actor_id, now=now, field="picture") if picture else None
            )
            item = Item(
                store_id=store.id,
                name=name,
                unit=unit,
                points_price=points_price,
                stock=0,
                low_stock_threshold=low_stock_threshold,
                monthly_limit=monthly_limit,
                category=category,
                picture=key,
                created_at=now,
            )
            session.add(item)
            session.flush()
            if stock:
                inventory.move(
                    session,
                    item_id=item.id,
                    delta=stock,
                    kind="purchase",
                    now=now,
                    actor_id=getattr(actor, "id", None),
                    note="上架初始库存",
                )
            audit.record(
                "item.create",
                "item",
                item.id,
                actor=actor,
                after={"store_id": store.id, "name": name, "points_price": points_price, "stock": stock},
                region_id=store.region_id,
                now=now,
            )
    except IntegrityError as exc:
        raise Conflict("item_taken") from exc
    return item


def receive(
    *,
    actor: User | None,
    item_id: int,
    delta: int,
    reason: str,
    now: datetime,
    donor: str | None = None,
    note: str | None = None,
    counted: int | None = None,
    key: str | None = None,
) -> Item:
    """Stock in (purchase, donation with donor) or a stocktake (counted quantity, or a delta).

    With `key` (the client's Idempotency-Key, or the goods form's per-render key) the receipt
    applies once: the key is stored, unique, on the movement it wrote, so a concurrent or later
    repeat finds that movement and gets the first result; the same key with another body is a 409.
    """
    donor = (donor or "").strip() or None
    note = (note or "").strip()[:255] or None
    full_key = _stock_key(item_id, actor, key)
    asked = {"kind": reason, "delta": None if counted is not None else delta, "counted": counted}
    asked |= {"donor": donor, "note": note}
    try:
        with unit_of_work() as session:
            # The row lock orders concurrent receipts of one item (PostgreSQL; SQLite writes one at a
            # time anyway), so a repeat of a key in flight waits and then finds the first movement.
            item = session.get(Item, item_id, with_for_update=True, populate_existing=True)
            if item is None:
                raise NotFound("item_not_found")
            if actor is not None:
                authorize(actor, STAFF, item, hide=True)
            if full_key is not None and (done := _movement_by_key(session, full_key)) is not None:
                return _replay(done, asked)
            movement = _receive(session, actor, item, delta, reason, now, donor, note, counted, full_key)
            if movement is None:
                return item
    except IntegrityError:
        # The unique key is the last word: a repeat that slipped past the lock lost the insert.
        done = _movement_by_key(db.session, full_key) if full_key is not None else None
        if done is None:
            raise
        return _replay(done, asked)
    return _as_of(db.session.get(Item, item_id), movement.stock_after)


def _stock_key(item_id: int, actor: User | None, key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise Invalid(errors={"Idempotency-Key": [f"请求编号须为 1–{MAX_KEY} 个可见字符"]})
    return f"stock:{item_id}:{getattr(actor, 'id', 0)}:{key}"


def _movement_by_key(session: Session, full_key: str) -> StockMovement | None:
    return session.scalar(sa.select(StockMovement).where(StockMovement.idempotency_key == full_key))


def _replay(done: StockMovement, asked: dict) -> Item:
    """The first result of a repeated key; another body under the same key is a conflict."""
    first = {
        "kind": done.kind,
        "delta": None if done.counted is not None else done.delta,
        "counted": done.counted,
        "donor": done.donor,
        "note": done.note,
    }
    if first != asked:
        raise Conflict("idempotency_conflict")
    return _as_of(done.item, done.stock_after)


def _as_of(item: Item, stock: int) -> Item:
    """A detached copy of `item` with the stock a movement left: the same answer for every repeat."""
    copy = Item(**{column.key: getattr(item, column.key) for column in Item.__table__.columns})
    copy.stock = stock
    return copy


def _receive(
    session: Session,
    actor: User | None,
    item: Item,
    delta: int,
    reason: str,
    now: datetime,
    donor: str | None,
    note: str | None,
    counted: int | None,
    full_key: str | None,
) -> StockMovement | None:
    if reason in ("purchase", "donation") and (not isinstance(delta, int) or delta <= 0):
        raise Invalid("stock_delta_invalid", errors={"delta": ["入库数量须为正整数"]})
    if reason == "donation" and not donor:
        raise Invalid(errors={"donor": ["请填写捐赠人（单位）"]})
    if reason == "stocktake" and counted is not None:
        if counted < 0:
            raise Invalid("stock_delta_invalid", errors={"counted": ["盘点数量不能为负数"]})
        delta = counted - item.stock
        if delta == 0:
            audit.record(
                "item.stocktake",
                "item",
                item.id,
                actor=actor,
                after={"counted": counted, "delta": 0},
                region_id=item.store.region_id,
                now=now,
            )
            return None
    movement = inventory.move(
        session,
        item_id=item.id,
        delta=delta,
        kind=reason,
        now=now,
        actor_id=getattr(actor, "id", None),
        donor=donor,
        note=note,
        counted=counted,
        idempotency_key=full_key,
    )
    audit.record(
        f"item.{reason}",
        "item",
        item.id,
        actor=actor,
        after={"delta": delta, "stock_after": movement.stock_after, "donor": movement.donor, "counted": counted},
        region_id=item.store.region_id,
        now=now,
    )
    return movement


def set_picture(*, actor: User, item_id: int, picture: bytes | None, now: datetime) -> Item:
    """Give an item a (new) picture, or take it away with None; audited. Empty bytes are a 422."""
    with unit_of_work() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFound("item_not_found")
        authorize(actor, STAFF, item, hide=True)
        before = item.picture
        item.picture = (
            None
            if picture is None
            else uploads.store(picture, purpose="item", actor_id=actor.id, now=now, field="picture")
        )
        audit.record(
            "item.picture",
            "item",
            item.id,
            actor=actor,
            before={"picture": before},
            after={"picture": item.picture},
            region_id=item.store.region_id,
            now=now,
        )
    return item


def item_picture(store_id: int, item_id: int) -> str | None:
    """The key of an item's picture; anyone may see the goods of a store."""
    item = db.session.get(Item, item_id)
    if item is None or item.store_id != store_id:
        raise NotFound("item_not_found")
    return item.picture


def update_item(*, actor: User, item_id: int, now: datetime, **changes) -> Item:
    allowed = {"points_price", "low_stock_threshold", "monthly_limit", "active", "unit", "category"}
    with unit_of_work() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFound("item_not_found")
        authorize(actor, STAFF, item, hide=True)
        before = {k: getattr(item, k) for k in changes if k in allowed}
        for key, value in changes.items():
            if key in allowed:
                setattr(item, key, value)
        audit.record(
            "item.update",
            "item",
            item.id,
            actor=actor,
            before=before,
            after={k: v for k, v in changes.items() if k in allowed},
            region_id=item.store.region_id,
            now=now,
        )
    return item
