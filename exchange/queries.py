"""Read side of the moral supermarket that the API and the pages share.

Whom a store serves: the residents of its region's subtree. A clerk finds those by name and the
last four phone digits; anyone else only by the personal code they show at the counter.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from community import accounts
from community import services as community_services
from community.models import User
from core.db import db
from exchange.models import Store
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
