"""Demo supermarket: a store per township with goods, donations, a clerk, and a month of redemptions."""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from community import services as community_services
from community.models import Region, User
from core.db import db, utcnow
from core.errors import DomainError
from exchange import redemption, stores
from points import awards

GOODS = [
    ("食用油 5L", "粮油", "桶", 80, 20, 1),
    ("大米 10kg", "粮油", "袋", 60, 30, 1),
    ("洗衣粉 1kg", "日化", "袋", 15, 40, None),
    ("毛巾", "日化", "条", 10, 50, None),
    ("牙膏", "日化", "支", 8, 40, None),
    ("香皂", "日化", "块", 5, 60, None),
    ("酱油", "调味", "瓶", 12, 25, None),
    ("鸡蛋 30枚", "副食", "盒", 30, 8, 2),
]


def seed() -> str:
    now = utcnow()
    rng = random.Random(11)
    townships = db.session.scalars(sa.select(Region).where(Region.level == "township").order_by(Region.id)).all()
    clerk = db.session.scalar(sa.select(User).where(User.phone == "13800000005"))
    made_stores = []
    for township in townships:
        village = db.session.scalar(sa.select(Region).where(Region.parent_id == township.id).order_by(Region.id))
        store = stores.create_store(
            actor=None,
            name=f"{village.name}道德超市",
            region_code=village.code,
            now=now,
            opening_hours="每周六 9:00–12:00",
        )
        made_stores.append(store)
        for name, category, unit, price, stock, limit in GOODS:
            item = stores.add_item(
                actor=None,
                store_id=store.id,
                name=name,
                unit=unit,
                points_price=price,
                stock=stock,
                category=category,
                monthly_limit=limit,
                now=now - timedelta(days=40),
            )
            if rng.random() < 0.4:
                stores.receive(
                    actor=None,
                    item_id=item.id,
                    delta=rng.randint(5, 20),
                    reason="donation",
                    donor=rng.choice(["桃江县爱心企业协会", "张氏宗亲会", "县供销社"]),
                    now=now - timedelta(days=35),
                )
    first = made_stores[0]
    community_services.grant_role(
        actor=None, user_id=clerk.id, role="clerk", scope_type="store", scope_id=first.id, now=now
    )
    residents = db.session.scalars(sa.select(User).where(~User.phone.like("138000000%"))).all()
    items = {
        s.id: db.session.scalars(sa.select(redemption.Item).where(redemption.Item.store_id == s.id)).all()
        for s in made_stores
    }
    done = 0
    for n in range(60):
        store = rng.choice(made_stores)
        served = [r for r in residents if store.region.contains(r.region)]  # picked by id: only its own
        if not served:
            continue
        resident = rng.choice(served)
        balance = awards.balance(db.session, resident.id)
        affordable = [i for i in items[store.id] if i.points_price <= balance and i.stock > 0]
        if not affordable:
            continue
        item = rng.choice(affordable)
        try:
            redemption.redeem(
                actor=clerk if store.id == first.id else _clerk_for(store, now),
                store_id=store.id,
                lines=[redemption.Line(item.id, 1)],
                key=f"demo-{n}",
                resident_id=resident.id,
                now=now - timedelta(days=rng.randint(0, 29), hours=rng.randint(0, 8)),
            )
            done += 1
        except DomainError:
            continue
    return f"demo supermarket: {len(made_stores)} stores, {len(GOODS)} goods each, {done} redemptions"


def _clerk_for(store, now):
    """Each other store gets a clerk of its own from its village (made once)."""
    existing = db.session.scalar(
        sa.select(User).join(User.grants).where(User.grants.any(role="clerk", scope_type="store", scope_id=store.id))
    )
    if existing is not None:
        return existing
    from community import accounts
    from core.security import hash_password

    user = accounts.register(
        phone=f"1380001{store.id:04d}",
        name=f"{store.name[:2]}店员",
        password="",
        password_hash=hash_password("Demo2026"),
        region_code=store.region.code,
        now=now,
    )
    community_services.grant_role(
        actor=None, user_id=user.id, role="clerk", scope_type="store", scope_id=store.id, now=now
    )
    return db.session.get(User, user.id)
