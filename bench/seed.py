"""The hot-path world both `bench_hotpaths.py` and `profile_hotpaths.py` load: one county, one
activity running now at one venue, volunteers ready to check in or out, one store and residents
with points. Run inside an app context on a fresh, migrated database.

Everything goes through the project's own services except the bulk rows (volunteers, sign-ups and
the attendances of those already inside), which are inserted in one statement each so that tens of
thousands of them take seconds. Check-out volunteers checked in 90 minutes ago: their scan closes
the attendance and turns 1.5 hours into points through the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

PASSWORD = "Bench2026x"


@dataclass
class World:
    venue_token: str
    store_id: int
    item_id: int
    clerk_bearer: str
    residents: list[int]
    # name → bearer tokens of volunteers who have not scanned yet (check-in) or are inside (check-out)
    checkin: dict[str, list[str]] = field(default_factory=dict)
    checkout: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def seed(checkin: dict[str, int], checkout: dict[str, int], residents: int = 200) -> World:
    """Seed the world; `checkin`/`checkout` map a pool name to its number of volunteers."""
    import sqlalchemy as sa

    from community import accounts, services
    from community.models import User
    from core.db import db, unit_of_work, utcnow
    from core.security import hash_password, issue_api_token
    from exchange import stores
    from points import ledger
    from volunteer import activities, tokens
    from volunteer.models import Activity, Attendance, Signup

    now = utcnow().replace(microsecond=0)
    services.create_region(actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=now)
    dept = services.create_department(actor=None, name="城关派出所", region_code="4301", now=now)
    pw = hash_password(PASSWORD)
    organizer = accounts.register(
        phone="13800009998", name="组织者", password="", password_hash=pw, region_code="4301", now=now
    )
    services.grant_role(
        actor=None, user_id=organizer.id, role="organizer", scope_type="department", scope_id=dept.id, now=now
    )
    organizer = db.session.get(User, organizer.id)
    activity = activities.create(
        actor=organizer,
        department_id=dept.id,
        region_code="4301",
        now=now,
        title="压测巡逻",
        description="",
        category="平安巡逻",
        address="县城广场",
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(hours=3),
    )
    activities.publish(actor=organizer, activity_id=activity.id, now=now)

    store = stores.create_store(actor=None, name="压测超市", region_code="4301", now=now)
    item = stores.add_item(
        actor=None, store_id=store.id, name="牙膏", unit="支", points_price=1, stock=1_000_000, now=now
    )
    clerk = accounts.register(
        phone="13800009999", name="店员", password="", password_hash=pw, region_code="4301", now=now
    )
    services.grant_role(actor=None, user_id=clerk.id, role="clerk", scope_type="store", scope_id=store.id, now=now)

    # Volunteers (check-in and check-out pools, in that order) and residents, numbered by phone.
    sizes = [*checkin.values(), *checkout.values()]
    volunteers = sum(sizes)
    with unit_of_work() as session:
        session.execute(
            sa.insert(User),
            [
                dict(
                    phone=f"139{i:08d}",
                    name="志愿者" if i < volunteers else "居民",
                    password_hash=pw,
                    region_id=organizer.region_id,
                    volunteer_no=f"B{i:08d}",
                    created_at=now,
                )
                for i in range(volunteers + residents)
            ],
        )
    people = db.session.execute(
        sa.select(User.id, User.token_version).where(User.phone.like("139%")).order_by(User.phone)
    ).all()
    volunteer_rows, resident_rows = people[:volunteers], people[volunteers:]
    inside = [uid for uid, _ in volunteer_rows[sum(checkin.values()) :]]
    earlier = now - timedelta(minutes=90)
    with unit_of_work() as session:
        session.execute(
            sa.insert(Signup),
            [
                dict(activity_id=activity.id, user_id=uid, status="confirmed", created_at=now, updated_at=now)
                for uid, _ in volunteer_rows
            ],
        )
        if inside:
            session.execute(
                sa.insert(Attendance),
                [
                    dict(
                        activity_id=activity.id,
                        user_id=uid,
                        checked_in_at=earlier,
                        scanned_in_at=earlier,
                        status="open",
                        method_in="venue",
                        updated_at=earlier,
                    )
                    for uid in inside
                ],
            )
    with unit_of_work() as session:
        region = ledger.issuer_account(session, "region", organizer.region_id)
        for uid, _ in resident_rows:
            ledger.transfer(
                session,
                source=region,
                target=ledger.resident_account(session, uid),
                amount=10_000_000,
                kind="adjustment",
                key=f"bench-fund-{uid}",
                now=now,
            )

    bearers = [issue_api_token(uid, version, now)[0] for uid, version in volunteer_rows]
    pools: list[list[str]] = []
    start = 0
    for size in sizes:
        pools.append(bearers[start : start + size])
        start += size
    activity = db.session.get(Activity, activity.id)
    clerk = db.session.get(User, clerk.id)
    return World(
        venue_token=tokens.poster(activity)[0],
        store_id=store.id,
        item_id=item.id,
        clerk_bearer=accounts.api_token(clerk, now)[0],
        residents=[uid for uid, _ in resident_rows],
        checkin=dict(zip(checkin, pools[: len(checkin)], strict=True)),
        checkout=dict(zip(checkout, pools[len(checkin) :], strict=True)),
    )
