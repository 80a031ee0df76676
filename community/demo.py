"""The demo county: regions, departments, households, ~200 residents and one of each staff role.

Deterministic (a fixed random seed), so that screenshots and the README stay true. Later domains
add their own demo data on top (activities, points, stores).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import sqlalchemy as sa

from community import accounts, services
from community.models import Department, Household, Region, User
from core.db import db, unit_of_work, utcnow
from core.security import hash_password

DEMO_PASSWORD = "Demo2026"
STAFF = {
    "admin": ("13800000001", "周建国", "管理员（县）"),
    "organizer": ("13800000002", "李卫东", "活动组织者（城关派出所）"),
    "grid_worker": ("13800000003", "王秀英", "网格员（桃花江社区第一网格）"),
    "reviewer": ("13800000004", "陈志华", "审核员（桃花江镇）"),
    "clerk": ("13800000005", "刘芳", "道德超市店员"),
}

CITY = ("430900", "益阳市", "city")
COUNTY = ("430922", "桃江县", "county")
TOWNSHIPS = {
    "430922100": (
        "桃花江镇",
        [("community", "桃花江社区"), ("community", "三里桥社区"), ("village", "花果山村"), ("village", "桃花村")],
    ),
    "430922101": ("灰山港镇", [("community", "灰山港社区"), ("village", "枫树村"), ("village", "石牛江村")]),
    "430922102": ("武潭镇", [("community", "武潭社区"), ("village", "大栗港村"), ("village", "罗家坪村")]),
}
DEPARTMENTS = [
    ("430922", "桃江县文明办"),
    ("430922", "共青团桃江县委"),
    ("430922100", "桃江县公安局城关派出所"),
    ("430922100", "桃花江镇司法所"),
    ("430922101", "灰山港派出所"),
    ("430922102", "武潭镇司法所"),
]
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯曹彭曾肖邓蒋蔡龚熊莫"
GIVEN = "建国秀英志华卫东桂兰明辉海燕丽娟子涵梓轩雨欣浩然春梅德明红霞玉兰金凤国强小平晓东文静家豪佳怡思远新民淑珍"


def _id_number(rng: random.Random, born: date, seq: int) -> str:
    body = f"430922{born:%Y%m%d}{seq % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def seed(*, force: bool = False, residents: int = 200) -> str:
    if not force and db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        return "database already holds people; demo seed skipped"
    now = utcnow()
    rng = random.Random(2026)

    def region(code: str, name: str, level: str, parent: str | None) -> Region:
        return services.region_by_code(code) or services.create_region(
            actor=None, code=code, name=name, level=level, parent_code=parent, now=now
        )

    region(*CITY, None)
    county = region(*COUNTY, CITY[0])
    leaves: list[Region] = []
    for t_code, (t_name, places) in TOWNSHIPS.items():
        region(t_code, t_name, "township", county.code)
        for i, (level, name) in enumerate(places, start=1):
            place = region(f"{t_code}{i:03d}", name, level, t_code)
            for g in (1, 2):
                leaves.append(region(f"{place.code}{g:02d}", f"{name}第{'一二'[g - 1]}网格", "grid", place.code))
    departments = {
        name: db.session.scalar(sa.select(Department).where(Department.name == name))
        or services.create_department(actor=None, name=name, region_code=code, now=now)
        for code, name in DEPARTMENTS
    }

    # One hash for every demo account: hashing 200 passwords with scrypt would take a minute.
    demo_hash = hash_password(DEMO_PASSWORD)
    staff_home = services.region_by_code("43092210000101")
    staff: dict[str, User] = {}
    for role, (phone, name, _) in STAFF.items():
        user = db.session.scalar(sa.select(User).where(User.phone == phone)) or accounts.register(
            phone=phone,
            name=name,
            password=DEMO_PASSWORD,
            password_hash=demo_hash,
            region_code=staff_home.code,
            consent_public_name=True,
            now=now,
        )
        staff[role] = user
    grants = [
        ("admin", "region", county.code),
        ("organizer", "department", departments["桃江县公安局城关派出所"].id),
        ("grid_worker", "region", staff_home.code),
        ("reviewer", "region", "430922100"),
    ]
    for role, scope_type, scope_id in grants:
        target = services.resolve_scope(scope_type, scope_id)
        if (scope_type, target.id) not in staff[role].grant_keys(role):
            services.grant_role(
                actor=None, user_id=staff[role].id, role=role, scope_type=scope_type, scope_id=scope_id, now=now
            )

    made = 0
    phones: set[str] = set()
    household_no = 0
    while made < residents:
        home = rng.choice(leaves)
        household_no += 1
        with unit_of_work() as session:
            household = Household(
                number=f"{home.code}-{household_no:04d}",
                region_id=home.id,
                address=f"{home.parent.name}{rng.randint(1, 99)}号",
                created_at=now,
            )
            session.add(household)
        surname = rng.choice(SURNAMES)
        for _member in range(rng.choice((1, 2, 2, 3, 3, 4))):
            if made >= residents:
                break
            phone = f"13{rng.randint(5, 9)}{rng.randint(0, 99999999):08d}"
            if phone in phones:
                continue
            phones.add(phone)
            born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
            name = surname + "".join(rng.sample(GIVEN, rng.choice((1, 2))))
            user = accounts.register(
                phone=phone,
                name=name,
                password=DEMO_PASSWORD,
                password_hash=demo_hash,
                region_code=home.code,
                id_number=_id_number(rng, born, made) if rng.random() < 0.6 else None,
                consent_public_name=rng.random() < 0.5,
                now=now - timedelta(days=rng.randint(0, 400)),
            )
            with unit_of_work():
                db.session.get(User, user.id).household_id = household.id
            made += 1
    return (
        f"demo county {county.name}: {len(leaves)} grids, {len(departments)} departments, {made} residents "
        f"in {household_no} households; staff password {DEMO_PASSWORD}"
    )
