"""Read side of the moral supermarket that the API, the pages and the jobs share: stores, goods,
stock movements, low stock, redemptions, and the residents a store serves.

Whom a store serves: the residents of its region's subtree. A clerk finds those by name and the
last four phone digits; anyone else only by the personal code they show at the counter. Reads
only: nothing here writes or authorizes.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from community import accounts
from community import queries as community_queries
from community import services as community_services
from community.models import User
from core.db import db
from core.errors import NotFound
from core.security import covers
from exchange.models import Item, Redemption, StockMovement, Store
from points import awards

MAX_FOUND = 5


def serves(store: Store) -> sa.ColumnElement[bool]:
    """A filter for the users a store serves: those registered in its region's subtree."""
    return User.region_id.in_(community_services.region_ids_in(store.region))


def served_resident(store: Store, resident_id: int | None) -> User | None:
    """The active resident with this id if the store serves them, else None (outsiders are invisible)."""
    if not isinstance(resident_id, int) or isinstance(resident_id, bool):
        return None
    return db.session.scalar(sa.select(User).where(User.id == resident_id, User.active.is_(True), serves(store)))


def find_residents(
    store: Store, *, now: datetime, code: str | None = None, name: str | None = None, phone_tail: str | None = None
) -> list[User]:
    """The counter's lookup: a personal code finds anyone (the resident is present and shows it);
    a name with the phone's last four digits finds only residents the store serves. Each found
    person carries `balance`."""
    if code:
        people = [accounts.resolve_personal_code(code, now)]
    else:
        people = list(
            db.session.scalars(
                sa.select(User)
                .where(
                    User.name == (name or "").strip(),
                    User.phone.endswith(phone_tail or "", autoescape=True),
                    User.active.is_(True),
                    serves(store),
                )
                .order_by(User.id)
                .limit(MAX_FOUND)
            )
        )
    for person in people:
        person.balance = awards.balance(db.session, person.id)
    return people


def stores_in(region_code: str | None = None) -> sa.Select:
    """Open stores, oldest first; with `region_code`, only those in that region's subtree (an
    unknown code matches none)."""
    select = sa.select(Store).where(Store.active.is_(True)).order_by(Store.id)
    if region_code is None:
        return select
    root = community_services.region_by_code(region_code)
    return select.where(Store.region_id.in_(community_queries.region_ids_under([root] if root else [])))


def staffed_by(user: User, roles: tuple[str, ...]) -> list[Store]:
    """The stores, open or closed, where `user` holds one of `roles`, oldest first."""
    return [store for store in db.session.scalars(sa.select(Store).order_by(Store.id)) if covers(user, roles, store)]


def items_of(store: Store, *, active: bool | None = None) -> sa.Select:
    """The store's goods in the order they were added; only the active or inactive ones when asked."""
    select = sa.select(Item).where(Item.store_id == store.id).order_by(Item.id)
    return select if active is None else select.where(Item.active.is_(active))


def counter_items(store: Store) -> list[Item]:
    """The goods the counter offers: active ones, grouped by category."""
    return list(
        db.session.scalars(
            sa.select(Item).where(Item.store_id == store.id, Item.active.is_(True)).order_by(Item.category, Item.id)
        )
    )


def low_stock(store: Store) -> list[Item]:
    """The store's active goods at or below their warning level (the day report and the morning notice)."""
    return list(
        db.session.scalars(
            sa.select(Item)
            .where(Item.store_id == store.id, Item.active.is_(True), Item.stock <= Item.low_stock_threshold)
            .order_by(Item.id)
        )
    )


def recent_movements(store: Store, *, limit: int = 30) -> list[StockMovement]:
    """The store's latest stock movements, the newest first."""
    return list(
        db.session.scalars(
            sa.select(StockMovement)
            .join(Item)
            .where(Item.store_id == store.id)
            .order_by(StockMovement.id.desc())
            .limit(limit)
        )
    )


def redemptions_between(store: Store, start: datetime, end: datetime) -> sa.Select:
    """The store's redemptions made in [start, end), in the order they were made."""
    return (
        sa.select(Redemption)
        .where(Redemption.store_id == store.id, Redemption.created_at >= start, Redemption.created_at < end)
        .order_by(Redemption.id)
    )


def redemption_at(store: Store, redemption_id: int) -> Redemption:
    """One of the store's redemptions; another store's is as missing as one that never was."""
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None or redemption.store_id != store.id:
        raise NotFound()
    return redemption
