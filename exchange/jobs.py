"""Scheduled work of the moral supermarket: the daily low-stock notice to each store's staff."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from community.models import RoleGrant
from core import clock
from core.db import db, unit_of_work
from core.jobs import JobSet
from core.notify import queue
from exchange import queries
from exchange.models import Store

jobs = JobSet()


@jobs.job("low-stock", hour=8, minute=0)
def low_stock(*, now: datetime) -> str:
    """Tell each store's clerks which goods are at or below their warning level (once a day)."""
    notices = 0
    day = clock.today(now).isoformat()  # once a local day; the UTC date turns at 08:00 in Beijing
    for store in db.session.scalars(sa.select(Store).where(Store.active.is_(True))).all():
        low = queries.low_stock(store)
        if not low:
            continue
        clerks = db.session.scalars(
            sa.select(RoleGrant.user_id).where(
                RoleGrant.role == "clerk", RoleGrant.scope_type == "store", RoleGrant.scope_id == store.id
            )
        ).all()
        body = "、".join(f"{i.name}（余 {i.stock}{i.unit}）" for i in low)
        store_id, store_name = store.id, store.name
        with unit_of_work() as session:
            for user_id in clerks:
                queue(
                    session,
                    user_id=user_id,
                    kind="low_stock",
                    title=f"{store_name}库存预警",
                    body=body,
                    key=f"low-stock:{store_id}:{day}:{user_id}",
                    now=now,
                )
                notices += 1
    return f"{notices} low-stock notices"
