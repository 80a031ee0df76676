"""Rankings (红榜) of a region subtree for a period, from the per-resident rollups.

Volunteers and households rank by where they live; departments by where they are located (the
service at their activities and the points they issued); regions (villages by default) by their
residents. A person is named only with their consent, otherwise masked (张*); a household by its
number; a department or region ranks only when at least `STATS_MIN_GROUP` people make it up
(DESIGN §8), and never shows who they are.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from community import pii
from community.models import Department, Household, Region, User
from core.db import db
from stats.models import PersonRollup, RegionClosure
from stats.queries import analytic, cached, min_group, within

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


def volunteers(root: Region, first: date, last: date, *, limit: int = 10, order: str = "points") -> list[dict]:
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
