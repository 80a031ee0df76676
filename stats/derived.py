"""Rollups of the rollups, made by the refresh after the per-day ones: what a request reads.

- `stats_area`: every figure per region at every level of the tree (the region and all below it)
  per day, month and calendar year; `stats_department` the same per department;
- `stats_rank`: the rankings of each month and calendar year, the best `RANKED` volunteers and
  households of every region down to townships, and every department and region with its sums;
- `stats_flag`: the integrity flags of each month (`stats.flags`), with the regions behind them.

Each is recomputed whole for every day, month and year the refresh touched (`DELETE` then one
`INSERT … SELECT` per period), from the per-day and per-month rollups of `stats.refresh`: the same
idempotent steps as theirs, so a rebuild finds what the increments left.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from community.models import Department, Region
from stats.models import (
    AREA_MEASURES,
    DEPARTMENT_MEASURES,
    AreaRollup,
    DeedRollup,
    DepartmentRollup,
    FlagRegion,
    FlagRow,
    LedgerRollup,
    PeopleRollup,
    PersonRollup,
    RankRollup,
    RegionClosure,
    ServiceRollup,
    StoreRollup,
)

RANKED = 100  # volunteers and households kept per region and period (the API asks for 100 at most)
RANKED_LEVELS = ("province", "city", "county", "township")  # below: few enough people to rank on request
KINDS = ("volunteers", "households", "departments", "regions")
LEDGER = ("issued", "deducted", "redeemed", "expired")


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def span(grain: str, period: date) -> tuple[str, date, date]:
    """The source grain and [lo, hi) of source periods a derived row of `grain` at `period` sums."""
    if grain == "d":
        return "d", period, period + timedelta(days=1)
    if grain == "m":
        return "m", period, _next_month(period)
    return "m", period, period.replace(year=period.year + 1)


def _zero() -> Any:
    return sa.cast(sa.literal_column("0"), sa.BigInteger)


def _branch(
    model: Any, key: Any, source: str, lo: date, hi: date, names: tuple[str, ...], given: dict, join: tuple = ()
) -> sa.Select:
    columns = [given[n].label(n) if n in given else _zero().label(n) for n in (*names, "active")]
    select = sa.select(key.label("key"), *columns).select_from(model)
    if join:
        select = select.join(*join)
    return select.where(model.grain == source, model.period >= lo, model.period < hi)


def _coarser(model: Any, key: Any, grain: str, period: date, names: tuple[str, ...]) -> sa.Select:
    """A month from its days, a year from its months (every measure but `active` adds up)."""
    finer, lo, hi = ("d", period, _next_month(period)) if grain == "m" else ("m", *span("y", period)[1:])
    given = {n: model.__table__.c[n] for n in names}
    return _branch(model, key, finer, lo, hi, names, given)


def _active(key_of, source: str, lo: date, hi: date, names: tuple[str, ...], by: str) -> sa.Select:
    """Distinct residents who served, per key (a region with all below it, or a department)."""
    served = (
        sa.select(PersonRollup.user_id, getattr(PersonRollup, by).label("place"))
        .where(
            PersonRollup.grain == source,
            PersonRollup.period >= lo,
            PersonRollup.period < hi,
            PersonRollup.participations > 0,
        )
        .distinct()
        .subquery()
    )
    key, select = key_of(served.c.place, sa.select().select_from(served))
    return select.add_columns(
        key.label("key"),
        *(_zero().label(n) for n in names),
        sa.func.count(sa.distinct(served.c.user_id)).label("active"),
    ).group_by(key)


def area_insert(grain: str, period: date) -> sa.Insert:
    source, lo, hi = span(grain, period)

    def up(region_column: Any, select: sa.Select) -> tuple[Any, sa.Select]:
        closure = aliased(RegionClosure)
        return closure.ancestor_id, select.join(closure, closure.region_id == region_column)

    if grain != "d":
        branches = [_coarser(AreaRollup, AreaRollup.region_id, grain, period, AREA_MEASURES)]
        branches.append(_active(up, source, lo, hi, AREA_MEASURES, "region_id"))
        return _insert(AreaRollup, "region_id", grain, period, AREA_MEASURES, branches)
    branches = []
    for model, given in (
        (ServiceRollup, {n: getattr(ServiceRollup, n) for n in AREA_MEASURES[:7]}),
        (LedgerRollup, {n: getattr(LedgerRollup, n) for n in LEDGER}),
        (PeopleRollup, {"registered": PeopleRollup.registered}),
        (StoreRollup, {"redemptions": StoreRollup.redemptions, "goods": StoreRollup.goods}),
        (DeedRollup, {"deeds": DeedRollup.deeds, "deductions": DeedRollup.deductions}),
    ):
        closure = aliased(RegionClosure)
        join = (closure, closure.region_id == model.region_id)
        branches.append(_branch(model, closure.ancestor_id, source, lo, hi, AREA_MEASURES, given, join))
    branches.append(_active(up, source, lo, hi, AREA_MEASURES, "region_id"))
    return _insert(AreaRollup, "region_id", grain, period, AREA_MEASURES, branches)


def department_insert(grain: str, period: date) -> sa.Insert:
    source, lo, hi = span(grain, period)

    def own(department_column: Any, select: sa.Select) -> tuple[Any, sa.Select]:
        return department_column, select.where(department_column != 0)

    if grain != "d":
        branches = [
            _coarser(DepartmentRollup, DepartmentRollup.department_id, grain, period, DEPARTMENT_MEASURES),
            _active(own, source, lo, hi, DEPARTMENT_MEASURES, "department_id"),
        ]
        return _insert(DepartmentRollup, "department_id", grain, period, DEPARTMENT_MEASURES, branches)
    branches = [
        _branch(
            ServiceRollup,
            ServiceRollup.department_id,
            source,
            lo,
            hi,
            DEPARTMENT_MEASURES,
            {n: getattr(ServiceRollup, n) for n in AREA_MEASURES[:7]},
        ),
        _branch(
            LedgerRollup,
            LedgerRollup.department_id,
            source,
            lo,
            hi,
            DEPARTMENT_MEASURES,
            {n: getattr(LedgerRollup, n) for n in LEDGER},
        ).where(LedgerRollup.department_id != 0),
        _active(own, source, lo, hi, DEPARTMENT_MEASURES, "department_id"),
    ]
    return _insert(DepartmentRollup, "department_id", grain, period, DEPARTMENT_MEASURES, branches)


def _insert(model: Any, key: str, grain: str, period: date, names: tuple[str, ...], branches: list) -> sa.Insert:
    both = sa.union_all(*branches).subquery()
    select = sa.select(
        sa.literal(grain, sa.String(1)),
        sa.literal(period, sa.Date),
        both.c.key,
        *(sa.func.sum(both.c[n]) for n in (*names, "active")),
    ).group_by(both.c.key)
    return sa.insert(model).from_select(["grain", "period", key, *names, "active"], select)


# Rankings --------------------------------------------------------------------------------------


def _per_person(lo: date, hi: date) -> Any:
    """Each resident's minutes and points of the period, per region they lived in (and household)."""
    return (
        sa.select(
            PersonRollup.user_id,
            PersonRollup.region_id,
            PersonRollup.household_id,
            sa.func.sum(PersonRollup.service_minutes).label("minutes"),
            sa.func.sum(PersonRollup.points).label("points"),
        )
        .where(PersonRollup.grain == "m", PersonRollup.period >= lo, PersonRollup.period < hi)
        .group_by(PersonRollup.user_id, PersonRollup.region_id, PersonRollup.household_id)
        .subquery()
    )


def _ranked(kind: str, grain: str, period: date, grouped: Any, cut: bool) -> sa.Insert:
    by_points = sa.func.row_number().over(
        partition_by=grouped.c.region_id,
        order_by=(grouped.c.points.desc(), grouped.c.minutes.desc(), grouped.c.subject_id),
    )
    by_hours = sa.func.row_number().over(
        partition_by=grouped.c.region_id,
        order_by=(grouped.c.minutes.desc(), grouped.c.points.desc(), grouped.c.subject_id),
    )
    placed = sa.select(grouped, by_points.label("by_points"), by_hours.label("by_hours")).subquery()
    select = sa.select(
        sa.literal(kind, sa.String(12)),
        sa.literal(grain, sa.String(1)),
        sa.literal(period, sa.Date),
        placed.c.region_id,
        placed.c.subject_id,
        placed.c.minutes,
        placed.c.points,
        placed.c.people,
        placed.c.by_points,
        placed.c.by_hours,
    )
    if cut:
        select = select.where(sa.or_(placed.c.by_points <= RANKED, placed.c.by_hours <= RANKED))
    columns = ["kind", "grain", "period", "region_id", "subject_id", "minutes", "points", "people"]
    return sa.insert(RankRollup).from_select([*columns, "by_points", "by_hours"], select)


def _sums(select: sa.Select, people: Any, person: Any) -> sa.Select:
    minutes, points = sa.func.sum(person.c.minutes), sa.func.sum(person.c.points)
    return select.add_columns(minutes.label("minutes"), points.label("points"), people.label("people")).having(
        sa.or_(minutes > 0, points > 0)
    )


def rank_inserts(grain: str, period: date) -> list[sa.Insert]:
    _source, lo, hi = span(grain, period)
    person = _per_person(lo, hi)
    closure, root = aliased(RegionClosure), aliased(Region)
    in_ranked = (
        (closure, closure.region_id == person.c.region_id),
        (
            root,
            sa.and_(root.id == closure.ancestor_id, root.level.in_(RANKED_LEVELS)),
        ),
    )
    people = sa.func.count(sa.distinct(person.c.user_id))

    volunteers = sa.select(closure.ancestor_id.label("region_id"), person.c.user_id.label("subject_id"))
    volunteers = _sums(volunteers.select_from(person).join(*in_ranked[0]).join(*in_ranked[1]), people, person)
    volunteers = volunteers.group_by(closure.ancestor_id, person.c.user_id).subquery()

    households = sa.select(closure.ancestor_id.label("region_id"), person.c.household_id.label("subject_id"))
    households = _sums(households.select_from(person).join(*in_ranked[0]).join(*in_ranked[1]), people, person)
    households = (
        households.where(person.c.household_id != 0).group_by(closure.ancestor_id, person.c.household_id).subquery()
    )

    # Departments: from the per-department rows directly (a resident's points from a department).
    department_people = sa.func.count(sa.distinct(PersonRollup.user_id))
    minutes, points = sa.func.sum(PersonRollup.service_minutes), sa.func.sum(PersonRollup.points)
    departments = (
        sa.select(
            Department.region_id.label("region_id"),
            Department.id.label("subject_id"),
            minutes.label("minutes"),
            points.label("points"),
            department_people.label("people"),
        )
        .join(Department, Department.id == PersonRollup.department_id)
        .where(PersonRollup.grain == "m", PersonRollup.period >= lo, PersonRollup.period < hi)
        .group_by(Department.region_id, Department.id)
        .having(sa.or_(minutes > 0, points > 0))
        .subquery()
    )

    member = aliased(RegionClosure)
    regions = sa.select(member.ancestor_id.label("region_id"), member.ancestor_id.label("subject_id"))
    regions = _sums(regions.select_from(person).join(member, member.region_id == person.c.region_id), people, person)
    regions = regions.group_by(member.ancestor_id).subquery()
    return [
        _ranked("volunteers", grain, period, volunteers, cut=True),
        _ranked("households", grain, period, households, cut=True),
        _ranked("departments", grain, period, departments, cut=False),
        _ranked("regions", grain, period, regions, cut=False),
    ]


# Writing ---------------------------------------------------------------------------------------


def periods(days: Iterable[date]) -> dict[str, list[date]]:
    """The days, months and years that `days` touch."""
    days = set(days)
    return {
        "d": sorted(days),
        "m": sorted({d.replace(day=1) for d in days}),
        "y": sorted({d.replace(month=1, day=1) for d in days}),
    }


def write_figures(session: Session, grain: str, period: date) -> int:
    for model in (AreaRollup, DepartmentRollup):
        session.execute(sa.delete(model).where(model.grain == grain, model.period == period))
    session.execute(area_insert(grain, period))
    session.execute(department_insert(grain, period))
    return 4


def write_rankings(session: Session, grain: str, period: date) -> int:
    session.execute(sa.delete(RankRollup).where(RankRollup.grain == grain, RankRollup.period == period))
    for insert in rank_inserts(grain, period):
        session.execute(insert)
    return 5


def write_flags(session: Session, month: date) -> int:
    """The flags of `month` over the whole tree, with the regions of the records behind each."""
    from stats import flags

    session.execute(
        sa.delete(FlagRegion).where(FlagRegion.flag_id.in_(sa.select(FlagRow.id).where(FlagRow.month == month)))
    )
    session.execute(sa.delete(FlagRow).where(FlagRow.month == month))
    found = flags.compute(month, _next_month(month) - timedelta(days=1))
    for position, flag in enumerate(found):
        row = FlagRow(
            month=month, kind=flag.kind, position=position, payload={**flag.as_dict(), "month": f"{month:%Y-%m}"}
        )
        session.add(row)
        session.flush()
        if flag.regions:
            session.execute(sa.insert(FlagRegion), [{"flag_id": row.id, "region_id": r} for r in sorted(flag.regions)])
    return 2 + len(found)


DERIVED = (AreaRollup, DepartmentRollup, RankRollup)
