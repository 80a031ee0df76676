"""`flask demo seed --scale city|county|pct1|test`: a city-sized demo for benchmarks, in bulk.

The city is 益阳市 as DESIGN §7 sizes it: 6 county-level units, about 5,816 grids, 1.2M residents
in households, 100k activities over the last year with 1M attendances, each credited through
the ledger onto the resident's archive, and a year of redemptions at the township supermarkets.
`county` is one county (about a sixth), `pct1` 1% of the city, `test` a few hundred residents.

Places, people and the year are written in bulk (`citydemo.bulk`: COPY on PostgreSQL), each phase
one transaction; the few staff accounts and role grants, the points rule and the policy go
through the services as an operator's would. Only into a database that holds nobody yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import click
import sqlalchemy as sa

from citydemo import people, places, year
from citydemo.bulk import Writer
from community import accounts, services
from community.demo import DEMO_PASSWORD, STAFF
from community.models import Department, Region, User
from core import audit, clock
from core.db import db, unit_of_work, utcnow
from core.security import hash_password
from points import policies


@dataclass(frozen=True)
class Scale:
    residents: int
    grids: int
    activities: int
    participations: int
    counties: tuple[str, ...] | None = None  # None: all six


SCALES = {
    "city": Scale(1_200_000, 5_816, 100_000, 1_000_000),
    "county": Scale(200_000, 970, 16_667, 166_667, ("430922",)),
    "pct1": Scale(12_000, 58, 1_000, 10_000),
    "test": Scale(300, 12, 40, 250),
}
PARTICIPATIONS_PER_VOLUNTEER = 7


def seed(scale_name: str, *, progress: bool = True) -> str:
    if scale_name not in SCALES:
        raise click.BadParameter(f"one of {', '.join(SCALES)}", param_hint="--scale")
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        raise click.ClickException("database already holds people; the bulk seed needs a new, migrated database")
    scale = SCALES[scale_name]
    began = time.perf_counter()
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    end = now - timedelta(days=1)
    start = end - timedelta(days=365)
    built = start - timedelta(days=800)
    report: list[str] = []

    def phase(name: str, started: float, writer: Writer) -> None:
        report.append(f"{name}: {time.perf_counter() - started:.1f} s")
        report.extend(writer.report())

    started = time.perf_counter()
    with unit_of_work() as session:
        writer = Writer(session)
        city = places.build(writer, grids=scale.grids, counties=scale.counties, now=built)
        shops = year.open_stores(writer, city, opened=start - timedelta(days=30))
        writer.finish()
    phase("places and stores", started, writer)

    started = time.perf_counter()
    password_hash = hash_password(DEMO_PASSWORD)  # once: scrypt for every resident would take days
    region = db.session.get(Region, city.id)
    policies.set_rule(
        actor=None,
        region=region,
        category=None,
        now=built,
        unit_minutes=30,
        minimum_minutes=30,
        daily_cap_minutes=480,
        points_per_hour=10,
    )
    policies.set_policy(actor=None, region=db.session.get(Region, city.id), now=built, notice_days=3)
    organizer_id = _staff(city, shops, password_hash, built)
    rule = policies.rule_for(db.session, db.session.get(Region, city.id), None)
    report.append(f"staff, rule and policy: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    share = min(0.9, scale.participations / PARTICIPATIONS_PER_VOLUNTEER / scale.residents)
    with unit_of_work() as session, _bar(progress, scale.residents, "residents") as bar:
        writer = Writer(session)
        folks = people.build(
            writer,
            city,
            residents=scale.residents,
            volunteer_share=share,
            password_hash=password_hash,
            year_start=start,
            progress=bar.update,
        )
        writer.finish()
    phase("households and residents", started, writer)

    started = time.perf_counter()
    departments = dict(db.session.execute(sa.select(Department.id, Department.name)).all())
    with unit_of_work() as session, _bar(progress, (end - start).days + 1, "the year") as bar:
        writer = Writer(session)
        the_year = year.Year(
            writer,
            city,
            folks,
            shops,
            rule=rule,
            organizer_id=organizer_id,
            departments=departments,
            start=start,
            end=end,
            zone=clock.zone(),
        )
        the_year.open_accounts()
        totals = the_year.run(the_year.plan(scale.activities), scale.participations, bar.update)
        the_year.close_accounts()
        writer.finish()
        summary = {
            "scale": scale_name,
            "regions": city.regions,
            "grids": len(city.grids),
            "departments": city.departments,
            "residents": folks.residents,
            "households": folks.households,
            "volunteers": folks.volunteers,
            "stores": len(shops),
            **totals.__dict__,
        }
        audit.record("demo.seed", "region", city.id, after=summary, region_id=city.id, now=now)
    phase("the year", started, writer)
    if db.session.get_bind().dialect.name == "postgresql":
        started = time.perf_counter()
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        report.append(f"analyze: {time.perf_counter() - started:.1f} s")
    head = (
        f"{city.name} ({scale_name}): {len(city.counties)} counties, {len(city.townships)} townships, "
        f"{len(city.villages)} villages and communities, {len(city.grids)} grids, {city.departments} departments; "
        f"{folks.residents:,} residents in {folks.households:,} households ({folks.volunteers:,} volunteers); "
        f"{totals.activities:,} activities, {totals.attendances:,} attendances, {totals.credits:,} credits "
        f"({totals.points_issued:,} points), {totals.redemptions:,} redemptions ({totals.points_redeemed:,} points) "
        f"at {len(shops)} stores; {time.perf_counter() - began:.1f} s in all; staff password {DEMO_PASSWORD}"
    )
    return "\n".join([head, *report])


def _staff(city: places.City, shops: list[year.Shop], password_hash: str, now) -> int:
    """The demo's staff over the whole city (admin, organizer, grid worker, reviewer) and a clerk
    for every store; returns the organizer's id (who created the activities)."""
    home = city.grids[0]
    made = {}
    for role, (phone, name, _) in STAFF.items():
        made[role] = accounts.register(
            phone=phone,
            name=name,
            password=DEMO_PASSWORD,
            password_hash=password_hash,
            region_code=home.code,
            consent_public_name=True,
            now=now,
        )
    for role, scope in (("admin", city.code), ("organizer", city.code), ("reviewer", city.code)):
        services.grant_role(actor=None, user_id=made[role].id, role=role, scope_type="region", scope_id=scope, now=now)
    services.grant_role(
        actor=None, user_id=made["grid_worker"].id, role="grid_worker", scope_type="region", scope_id=home.code, now=now
    )
    grid_of = {t.id: t.villages[0].grids[0].code for t in city.townships}  # where each store stands
    for n, shop in enumerate(shops):
        clerk = made["clerk"] if n == 0 else None
        if clerk is None:
            clerk = accounts.register(
                phone=f"1380001{n:04d}",
                name=f"{shop.name[:2]}店员",
                password=DEMO_PASSWORD,
                password_hash=password_hash,
                region_code=grid_of[shop.township_id],
                now=now,
            )
        services.grant_role(actor=None, user_id=clerk.id, role="clerk", scope_type="store", scope_id=shop.id, now=now)
        shop.clerk_id = clerk.id
    return made["organizer"].id


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _bar(show: bool, length: int, label: str):
    return click.progressbar(length=length, label=label, file=None) if show else _Quiet()
