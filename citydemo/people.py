"""The city's residents: households in every grid (村民小组 addresses), people with unique phone
numbers and volunteer numbers, an ID number for some (kept as the keyed digest and masked form,
as registration keeps it), all with one password hash computed once. Some residents volunteer;
they are returned, by township, with how keen each is (the year's activities draw on them).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import accumulate

from citydemo.bulk import Writer
from citydemo.places import City, Grid, numeral
from community import pii

SURNAMES = (
    "王王王李李李张张张刘刘陈陈杨杨黄黄赵周吴徐孙胡朱高林何郭马罗罗梁宋郑谢谢韩唐冯曹彭彭曾曾肖邓邓"
    "蒋蔡龚熊莫龙文汤夏符姚贺段向易颜廖伍"
)
GIVEN = (
    "建国秀英志华卫东桂兰明辉海燕丽娟子涵梓轩雨欣浩然春梅德明红霞玉兰金凤国强小平晓东文静家豪佳怡思远新民"
    "淑珍湘益资江雪芳俊杰宇航欣怡诗琪伟军勇刚秋菊冬生夏莲永福友谊长青爱华"
)
# Mobile prefixes of the three carriers (138 is left to the staff accounts).
PREFIXES = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "139",
    "150",
    "151",
    "152",
    "153",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "173",
    "175",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "184",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]
USER_COLUMNS = (
    "id",
    "phone",
    "name",
    "password_hash",
    "volunteer_no",
    "id_number_digest",
    "id_number_masked",
    "region_id",
    "household_id",
    "consent_public_name",
    "guardian_consent",
    "active",
    "token_version",
    "failed_logins",
    "lockouts",
    "password_changed_at",
    "created_at",
)
HOUSEHOLD_COLUMNS = ("id", "number", "region_id", "address", "created_at")
BATCH = 50_000


def phone(index: int) -> str:
    """A unique 11-digit mobile number for the index-th resident: the last eight digits are a
    bijection of the index (48271 is prime to 10⁸), so no two residents share them."""
    prefix = PREFIXES[index * 7 % len(PREFIXES)]
    return f"{prefix}{(index * 48271 + 12345) % 10**8:08d}"


def id_number(county_code: str, index: int) -> str:
    """A well-formed ID number, unique per index (birth day and sequence both come from it)."""
    born = date(1940, 1, 1) + timedelta(days=index % 25_000)
    body = f"{county_code}{born:%Y%m%d}{index // 25_000 % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


@dataclass
class Pool:
    """The volunteers of one township and how keen each is (cumulative weights for drawing)."""

    user_ids: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)

    def close(self) -> None:
        self.cumulative = list(accumulate(self.weights))


@dataclass
class People:
    residents: int = 0
    households: int = 0
    volunteers: int = 0
    pools: dict[int, Pool] = field(default_factory=dict)  # township id → its volunteers


def build(
    writer: Writer,
    city: City,
    *,
    residents: int,
    volunteer_share: float,
    password_hash: str,
    year_start: datetime,
    progress: Callable[[int], None] = lambda n: None,
) -> People:
    rng = random.Random(1_200_000)
    grids = city.grids
    per_county = _shares(residents, [c.share for c in city.counties], rng)
    per_grid: list[int] = []
    for county, count in zip(city.counties, per_county, strict=True):
        county_grids = [g for g in grids if g.village.township.county is county]
        weights = [rng.uniform(0.6, 1.4) for _ in county_grids]
        per_grid += _shares(count, weights, rng)
    user_id, household_id = writer.next_id("users"), writer.next_id("household")
    people = People(pools={t.id: Pool() for t in city.townships})
    users: list[tuple] = []
    households: list[tuple] = []
    index = 0

    def flush() -> None:
        writer.write("household", HOUSEHOLD_COLUMNS, households)
        writer.write("users", USER_COLUMNS, users)
        progress(len(users))
        households.clear()
        users.clear()

    for grid, count in zip(grids, per_grid, strict=True):
        made = number = 0
        county_code = grid.village.township.county.code
        pool = people.pools[grid.village.township.id]
        while made < count:
            number += 1
            size = min(count - made, rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5)))
            registered = year_start - timedelta(days=rng.randint(1, 700), minutes=rng.randint(0, 1439))
            households.append((household_id, f"{grid.code}-{number:04d}", grid.id, _address(grid, rng), registered))
            surname = rng.choice(SURNAMES)
            for _ in range(size):
                digest = masked = None
                if rng.random() < 0.3:
                    number_ = id_number(county_code, index)
                    digest, masked = pii.id_digest(number_), pii.mask_id(number_)
                given = "".join(rng.sample(GIVEN, rng.choice((1, 2, 2))))
                users.append(
                    (
                        user_id,
                        phone(index),
                        surname + given,
                        password_hash,
                        f"ZY{user_id:08d}",
                        digest,
                        masked,
                        grid.id,
                        household_id,
                        rng.random() < 0.5,
                        False,
                        True,
                        0,
                        0,
                        0,
                        registered,
                        registered,
                    )
                )
                if rng.random() < volunteer_share:
                    pool.user_ids.append(user_id)
                    pool.weights.append(min(20.0, rng.paretovariate(1.5)))
                    people.volunteers += 1
                user_id += 1
                index += 1
            made += size
            household_id += 1
            people.households += 1
            if len(users) >= BATCH:
                flush()
    flush()
    for pool in people.pools.values():
        pool.close()
    people.residents = index
    return people


def _address(grid: Grid, rng: random.Random) -> str:
    village = grid.village
    if village.level == "community":
        return f"{village.name}{rng.randint(1, 40)}栋{rng.randint(1, 6)}单元{rng.randint(101, 1802)}室"
    return f"{village.name}{numeral(rng.randint(1, 12))}组{rng.randint(1, 60)}号"


def _shares(total: int, weights: list[float], rng: random.Random) -> list[int]:
    scale = sum(weights)
    parts = [int(total * w / scale) for w in weights]
    for _ in range(total - sum(parts)):
        parts[rng.randrange(len(parts))] += 1
    return parts
