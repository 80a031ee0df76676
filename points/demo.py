"""Demo points: deed types, a county rule, a service history, deeds at every step and adjustments,
so that archives, notices and certificates show something real. Deterministic."""

from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa

from community.models import Department, Region, User
from core.db import db, utcnow
from points import adjustments, awards, deeds, policies
from points.rules import credit

ACTIVITIES = [
    ("平安巡逻", "夜间平安巡逻"),
    ("环境整治", "河道垃圾清理"),
    ("助老助残", "探访独居老人"),
    ("法治宣传", "反诈宣传进社区"),
    ("文明劝导", "路口文明劝导"),
    ("矛盾调解", "邻里纠纷调解"),
]


def seed() -> str:
    now = utcnow()
    rng = random.Random(7)
    county = db.session.scalar(sa.select(Region).where(Region.level == "county"))
    policies.set_rule(
        actor=None,
        region=county,
        category=None,
        now=now,
        unit_minutes=30,
        minimum_minutes=30,
        daily_cap_minutes=480,
        points_per_hour=10,
    )
    policies.set_policy(actor=None, region=county, now=now, notice_days=3)
    departments = db.session.scalars(sa.select(Department).order_by(Department.id)).all()
    residents = db.session.scalars(sa.select(User).where(~User.phone.like("138000000%")).order_by(User.id)).all()
    services = 0
    for n in range(60):
        department = departments[n % len(departments)]
        category, title = ACTIVITIES[n % len(ACTIVITIES)]
        start = (now - timedelta(days=5 + n * 3)).replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=rng.choice((2, 3, 4)))
        rule = policies.rule_for(db.session, department.region, category)
        for volunteer in rng.sample(residents, rng.randint(4, 10)):
            check_in = start + timedelta(minutes=rng.randint(-20, 20))
            check_out = end + timedelta(minutes=rng.randint(-50, 15))
            awards.credit_service(
                user_id=volunteer.id,
                department_id=department.id,
                now=check_out,
                credit=credit(check_in, check_out, start, end, rule),
                key=f"demo:{n}:{volunteer.id}",
                activity={
                    "title": title,
                    "category": category,
                    "organizer": department.name,
                    "place": department.region.name,
                    "date": start.date().isoformat(),
                },
            )
            services += 1
    grid_worker = db.session.scalar(sa.select(User).where(User.phone == "13800000003"))
    reviewer = db.session.scalar(sa.select(User).where(User.phone == "13800000004"))
    neighbours = db.session.scalars(
        sa.select(User).where(User.region_id == grid_worker.region_id, ~User.phone.like("138000000%")).order_by(User.id)
    ).all()
    made = 0
    for i, resident in enumerate(neighbours[:8]):
        kind = ["haorenhaoshi", "xiaolaoaiqin", "lingliting", "luanrenglaji"][i % 4]
        deed = deeds.record(
            actor=grid_worker,
            resident_id=resident.id,
            deed_type=kind,
            now=now - timedelta(days=10),
            description=["帮助邻居抢收稻谷", "照顾卧床老母亲多年", "义务修理村道路灯", "在河边乱扔垃圾"][i % 4],
            occurred_on=(now - timedelta(days=12)).date(),
        )
        made += 1
        if i % 3 == 2:
            continue  # left pending, for the reviewer's queue
        deeds.approve(actor=reviewer, deed_id=deed.id, now=now - timedelta(days=(9 if i < 4 else 1)))
    posted = deeds.post_due(now=now).posted
    admin = db.session.scalar(sa.select(User).where(User.phone == "13800000001"))
    for resident in residents[:3]:
        adjustments.request(
            actor=admin,
            resident_id=resident.id,
            points=20,
            reason="抗洪抢险突出表现（县委表彰）",
            key=f"demo-adjust-{resident.id}",
            now=now - timedelta(days=2),
        )
    return f"demo points: {services} service records, {made} deeds ({posted} posted), 3 adjustments"
