"""Demo activities: in every township, past activities with real check-ins and check-outs (scanned
personal codes, so the points are earned the way they would be) and upcoming ones with sign-ups."""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from community import accounts
from community import services as community_services
from community.models import Department, Region, User
from core.db import db, utcnow
from core.errors import DomainError
from volunteer import activities, attendance, signups

PLAN = [
    ("平安巡逻", "村组平安巡逻"),
    ("环境整治", "河道垃圾清理"),
    ("助老助残", "探访独居老人"),
    ("法治宣传", "反诈宣传进村"),
    ("文明劝导", "路口文明劝导"),
]
UNITS = ("桃江县公安局城关派出所", "灰山港派出所", "武潭镇司法所")


def seed() -> str:
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    rng = random.Random(23)
    organizer = db.session.scalar(sa.select(User).where(User.phone == "13800000002"))
    units = [db.session.scalar(sa.select(Department).where(Department.name == name)) for name in UNITS]
    for unit in units[1:]:
        if ("department", unit.id) not in organizer.grant_keys("organizer"):
            community_services.grant_role(
                actor=None, user_id=organizer.id, role="organizer", scope_type="department", scope_id=unit.id, now=now
            )
    organizer = db.session.get(User, organizer.id)
    past = upcoming = scans = 0
    for unit in units:
        villages = db.session.scalars(
            sa.select(Region).where(community_services.subtree(unit.region), Region.level.in_(("village", "community")))
        ).all()
        neighbours = db.session.scalars(
            sa.select(User)
            .join(User.region)
            .where(community_services.subtree(unit.region), ~User.phone.like("138000%"))
        ).all()
        for n, (category, title) in enumerate(PLAN):
            place = rng.choice(villages)
            start = now + timedelta(days=(-20 + n * 3) if n < 3 else (2 + n), hours=rng.choice((-2, 1, 3)))
            activity = activities.create(
                actor=organizer,
                department_id=unit.id,
                region_code=place.code,
                now=start - timedelta(days=7),
                title=f"{place.name}{title}",
                description="请穿志愿者马甲，带好手套和水杯。",
                category=category,
                address=f"{place.name}村部",
                starts_at=start,
                ends_at=start + timedelta(hours=rng.choice((2, 3))),
                capacity=rng.choice((None, 10, 15)),
            )
            activities.publish(actor=organizer, activity_id=activity.id, now=start - timedelta(days=7))
            volunteers = rng.sample(neighbours, min(len(neighbours), rng.randint(5, 9)))
            for person in volunteers:
                try:
                    signups.sign_up(user=person, activity_id=activity.id, now=start - timedelta(days=3))
                except DomainError:
                    continue
            if start > now:
                upcoming += 1
                continue
            for person in volunteers:
                came = start + timedelta(minutes=rng.randint(-10, 15))
                left = activity.ends_at - timedelta(minutes=rng.randint(0, 40))
                try:
                    for moment in (came, left):
                        code, _ = accounts.personal_code(person, moment)
                        attendance.scan_personal_code(
                            organizer=organizer, activity_id=activity.id, code=code, now=moment
                        )
                        scans += 1
                except DomainError:
                    continue
            activities.finish(actor=organizer, activity_id=activity.id, now=activity.ends_at + timedelta(hours=1))
            past += 1
    return f"demo activities: {past} past with {scans} scans, {upcoming} upcoming"
