"""Rankings (红榜) of a region subtree for a period, from the per-resident rollups.

Volunteers and households rank by where they live; departments by where they are located (the
service at their activities and the points they issued); regions (villages by default) by their
residents. A person is named only with their consent, otherwise masked (张*); a household by its
number, which DESIGN §8 names as the way to publish without consent, so a household ranks whatever
its size and never shows its members; a department or region is a group and ranks only when at
least `STATS_MIN_GROUP` people make it up (§8: groups under 5 are suppressed).

A calendar month or year (or the part of one up to a day after which nobody has served yet, such
as this year so far) is read from `stats_rank`, which the refresh fills; any other period, or a
root below the townships, is ranked from the per-resident rollups, bounded by the subtree.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from community import pii
from community.models import Department, Household, Region, User
from core.db import db
from stats.derived import RANKED_LEVELS
from stats.models import PersonRollup, RankRollup, RegionClosure
from stats.queries import analytic, cached, min_group, within
from stats.refresh import month_of, next_month

LEVELS = {"township": ("township",), "village": ("village", "community"), "grid": ("grid",)}
KINDS = ("volunteers", "households", "departments", "regions")


def _in_subtree(select: sa.Select, region_column: Any, root: Region) -> sa.Select:
    closure = aliased(RegionClosure)
    return select.join(closure, sa.and_(closure.region_id == region_column, closure.ancestor_id == root.id))


def _ranked(rows: list[tuple[int, int, int, int]], order: str) -> list[dict[str, Any]]:
    """(id, minutes, points, people), best first → ranked rows; equal figures share a rank (1, 2, 2, 4)."""
    out, rank, previous = [], 0, None
    for position, (id_, minutes, points, people) in enumerate(rows, start=1):
        key = (points, minutes) if order == "points" else (minutes, points)
        if key != previous:
            rank, previous = position, key
        hours = round(minutes / 60, 2)
        out.append({"rank": rank, "id": id_, "service_hours": hours, "points": points, "people": people})
    return out


def _top(select: sa.Select, group: Any, first: date, last: date, order: str, limit: int, smallest: int = 1):
    """The best `limit` groups of the period, ordered and cut in SQL (a city has a million residents)."""
    minutes = sa.func.coalesce(sa.func.sum(PersonRollup.service_minutes), 0)
    points = sa.func.coalesce(sa.func.sum(PersonRollup.points), 0)
    people = sa.func.count(sa.distinct(PersonRollup.user_id))
    keys = (points, minutes) if order == "points" else (minutes, points)
    select = (
        select.add_columns(group.label("id"), minutes.label("minutes"), points.label("points"), people.label("people"))
        .select_from(PersonRollup)
        .where(within(PersonRollup, first, last))
        .group_by(group)
        .having(sa.or_(minutes > 0, points > 0))
        .order_by(*(k.desc() for k in keys), group)
        .limit(limit)
    )
    if smallest > 1:
        select = select.having(people >= smallest)
    analytic()
    rows = db.session.execute(select).all()
    return _ranked([(int(r.id), int(r.minutes), int(r.points), int(r.people)) for r in rows], order)


def standard(first: date, last: date) -> tuple[str, date] | None:
    """The stored month or year that ranks exactly as [first, last] does: the period is inside it
    and nobody has rollups in the rest of it."""
    if month_of(first) == month_of(last):
        grain, start, end = "m", month_of(first), next_month(first)
    elif first.year == last.year:
        grain, start, end = "y", date(first.year, 1, 1), date(first.year + 1, 1, 1)
    else:
        return None
    rest = sa.select(PersonRollup.user_id).where(
        PersonRollup.grain == "d",
        sa.or_(
            sa.and_(PersonRollup.period >= start, PersonRollup.period < first),
            sa.and_(PersonRollup.period > last, PersonRollup.period < end),
        ),
    )
    if db.session.scalar(sa.select(sa.exists(rest))):
        return None
    return grain, start


def _stored(kind: str, stored: tuple[str, date], root: Region, order: str, limit: int) -> list[dict[str, Any]]:
    """The best `limit` of a ranking the refresh made for `root` (volunteers, households)."""
    position = RankRollup.by_points if order == "points" else RankRollup.by_hours
    rows = db.session.execute(
        sa.select(RankRollup.subject_id, RankRollup.minutes, RankRollup.points, RankRollup.people)
        .where(
            RankRollup.kind == kind,
            RankRollup.grain == stored[0],
            RankRollup.period == stored[1],
            RankRollup.region_id == root.id,
            position <= limit,
        )
        .order_by(position)
    ).all()
    return _ranked([(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows], order)


def _stored_groups(
    kind: str, stored: tuple[str, date], root: Region, order: str, limit: int, places: Any = None
) -> list[dict[str, Any]]:
    """Departments or regions inside the subtree from the refresh's sums, at least `STATS_MIN_GROUP` people each."""
    keys = (RankRollup.points, RankRollup.minutes) if order == "points" else (RankRollup.minutes, RankRollup.points)
    select = sa.select(RankRollup.subject_id, RankRollup.minutes, RankRollup.points, RankRollup.people)
    select = _in_subtree(select, RankRollup.region_id, root)
    if places is not None:
        select = select.join(Region, sa.and_(Region.id == RankRollup.subject_id, Region.level.in_(places)))
    rows = db.session.execute(
        select.where(
            RankRollup.kind == kind,
            RankRollup.grain == stored[0],
            RankRollup.period == stored[1],
            RankRollup.people >= min_group(),
        )
        .order_by(*(k.desc() for k in keys), RankRollup.subject_id)
        .limit(limit)
    ).all()
    return _ranked([(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows], order)


def _ranks_stored(root: Region) -> bool:
    return root.level in RANKED_LEVELS


def volunteers(root: Region, first: date, last: date, *, limit: int = 10, order: str = "points") -> list[dict]:
    stored = standard(first, last) if _ranks_stored(root) else None
    if stored is not None:
        ranked = _stored("volunteers", stored, root, order, limit)
    else:
        select = _in_subtree(sa.select(), PersonRollup.region_id, root)
        ranked = _top(select, PersonRollup.user_id, first, last, order, limit)
    people = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_([r["id"] for r in ranked])))}
    out = []
    for row in ranked:
        user = people[row["id"]]
        name = user.name if user.consent_public_name else pii.mask_name(user.name)
        figures = {"service_hours": row["service_hours"], "points": row["points"]}
        out.append({"rank": row["rank"], "user_id": user.id, "id": user.id, "name": name, **figures})
    return out


def households(root: Region, first: date, last: date, *, limit: int = 10, order: str = "points") -> list[dict]:
    stored = standard(first, last) if _ranks_stored(root) else None
    if stored is not None:
        ranked = _stored("households", stored, root, order, limit)
    else:
        select = _in_subtree(sa.select(), PersonRollup.region_id, root).where(PersonRollup.household_id != 0)
        ranked = _top(select, PersonRollup.household_id, first, last, order, limit)
    numbers = dict(
        db.session.execute(
            sa.select(Household.id, Household.number).where(Household.id.in_([r["id"] for r in ranked]))
        ).all()
    )
    return [
        {"rank": r["rank"], "id": r["id"], "name": f"{numbers.get(r['id'], r['id'])}户", **_figures(r)} for r in ranked
    ]


def departments(root: Region, first: date, last: date, *, limit: int = 10, order: str = "points") -> list[dict]:
    stored = standard(first, last)
    if stored is not None:
        ranked = _stored_groups("departments", stored, root, order, limit)
    else:
        select = sa.select().join(Department, Department.id == PersonRollup.department_id)
        select = _in_subtree(select, Department.region_id, root)
        ranked = _top(select, Department.id, first, last, order, limit, smallest=min_group())
    names = dict(
        db.session.execute(
            sa.select(Department.id, Department.name).where(Department.id.in_([r["id"] for r in ranked]))
        ).all()
    )
    return [{"rank": r["rank"], "id": r["id"], "name": names[r["id"]], **_figures(r)} for r in ranked]


def regions(
    root: Region, first: date, last: date, *, limit: int = 10, order: str = "points", level: str | None = None
) -> list[dict]:
    """Regions at `level` (villages and communities by default) inside the subtree, by their residents."""
    levels = LEVELS[level or "village"]
    stored = standard(first, last)
    if stored is not None:
        ranked = _stored_groups("regions", stored, root, order, limit, places=levels)
    else:
        member, place = aliased(RegionClosure), aliased(Region)
        select = (
            sa.select()
            .join(member, member.region_id == PersonRollup.region_id)
            .join(place, sa.and_(place.id == member.ancestor_id, place.level.in_(levels)))
        )
        select = _in_subtree(select, place.id, root)
        ranked = _top(select, place.id, first, last, order, limit, smallest=min_group())
    found = {r.id: r for r in db.session.scalars(sa.select(Region).where(Region.id.in_([row["id"] for row in ranked])))}
    return [
        {"rank": r["rank"], "id": r["id"], "code": found[r["id"]].code, "name": found[r["id"]].name, **_figures(r)}
        for r in ranked
    ]


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {"service_hours": row["service_hours"], "points": row["points"], "people": row["people"]}


@cached
def ranking(kind: str, root: Region, first: date, last: date, **options: Any) -> list[dict]:
    if kind != "regions":
        options.pop("level", None)
    return {"volunteers": volunteers, "households": households, "departments": departments, "regions": regions}[kind](
        root, first, last, **options
    )
