"""The catalogue of deeds and deductions (事迹类型): what a grid worker may record, at what points.

The catalogue a fresh installation ships with comes from the migrations and applies everywhere
(rows without a region). An admin adds, renames, re-prices or retires types for their region: the
change is a row of that region, which shadows a row of the same code above it for the whole
subtree (the nearest region wins, as with point rules). The shipped rows themselves are never
edited, so one county's prices never leak into another's. A deed copies its type's points when it
is recorded: re-pricing or retiring a type never changes a deed already recorded, approved or
posted. Every change is audited. This module moves no points.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from community import services as community_services
from community.models import Region, User
from core import audit
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid, NotFound
from core.security import authorize
from points.models import DeedType

CODE = re.compile(r"[a-z0-9_-]{2,32}", re.ASCII)
# Far above any deed a village would price, far below what a sum of a year's deeds could overflow.
POINTS_LIMIT = 1000


def _rank(column: sa.ColumnElement, ancestor_ids: list[int]) -> sa.ColumnElement[int]:
    """How near a type's region is to the region asked about: deeper is nearer, global is -1."""
    if not ancestor_ids:
        return sa.literal(-1)
    return sa.case({rid: depth for depth, rid in enumerate(ancestor_ids)}, value=column, else_=-1)


def types_for(region: Region | None, *, include_retired: bool = False) -> sa.Select:
    """The types that apply in `region`: for each code the row of the nearest region (itself, then
    its ancestors, then the shipped catalogue). A retired nearest row hides the code below it."""
    ids = region.ancestor_ids if region else []
    nearer = aliased(DeedType)
    shadowed = sa.exists().where(
        nearer.code == DeedType.code,
        nearer.region_id.in_(ids),
        _rank(nearer.region_id, ids) > _rank(DeedType.region_id, ids),
    )
    select = sa.select(DeedType).where(
        sa.or_(DeedType.region_id.is_(None), DeedType.region_id.in_(ids)),
        ~shadowed,
    )
    if not include_retired:
        select = select.where(DeedType.active.is_(True))
    return select.order_by(DeedType.points.desc(), DeedType.code)


@dataclass(frozen=True)
class Change:
    """What an admin sends: the fields given (None: leave as it is)."""

    name: str | None = None
    points: int | None = None
    active: bool | None = None


def _checked(change: Change, *, creating: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if change.name is not None and not 1 <= len(change.name.strip()) <= 64:
        errors["name"] = ["请填写名称（不超过 64 字）"]
    if creating and change.name is None:
        errors["name"] = ["请填写名称"]
    if change.points is not None and not (0 < abs(change.points) <= POINTS_LIMIT):
        errors["points"] = [f"分值须为 ±1–{POINTS_LIMIT} 的整数，扣分用负数"]
    if creating and change.points is None:
        errors["points"] = ["请填写分值"]
    return errors


def target_region(actor: User | None, region_code: str | None) -> Region:
    """The region a change is for: the one named, else the region the actor administers (when it
    is one). The shipped catalogue is never the target: it belongs to no admin."""
    if region_code:
        return community_services.require_region(region_code)
    roots = community_services.admin_regions(actor, roles=("admin",)) if actor is not None else []
    if len(roots) != 1:
        raise Invalid(errors={"region_code": ["请选择适用的地区"]})
    return roots[0]


def _snapshot(kind: DeedType) -> dict:
    return {"code": kind.code, "name": kind.name, "points": kind.points, "active": kind.active}


def add(*, actor: User, code: str, values: Change, region_code: str | None, now: datetime) -> DeedType:
    """A new type for a region (admins over it). A code the region already has is a 409; a code
    inherited from above is shadowed in the region's subtree from now on."""
    authorize(actor, "admin")
    code = (code or "").strip()
    errors = _checked(values, creating=True)
    if not CODE.fullmatch(code):
        errors["code"] = ["编码为 2–32 位小写字母、数字、下划线或连字符"]
    if errors:
        raise Invalid(errors=errors)
    try:
        with unit_of_work() as session:
            region = target_region(actor, region_code)
            authorize(actor, "admin", region)
            if _own(session, region, code) is not None:
                raise Conflict("deed_type_exists")
            kind = DeedType(
                code=code,
                name=values.name.strip(),
                points=values.points,
                region_id=region.id,
                active=True if values.active is None else values.active,
            )
            session.add(kind)
            session.flush()
            audit.record(
                "deed_type.create",
                "deed_type",
                kind.id,
                actor=actor,
                after={**_snapshot(kind), "region_code": region.code},
                region_id=region.id,
                now=now,
            )
    except IntegrityError as exc:  # the same code added twice at once: the unique index decides
        raise Conflict("deed_type_exists") from exc
    return kind


def change(*, actor: User, code: str, values: Change, region_code: str | None, now: datetime) -> DeedType:
    """Rename, re-price, retire or bring back a type for a region (admins over it). The region's own
    row changes in place; a type it inherits gets a row of the region's own that shadows it."""
    authorize(actor, "admin")
    errors = _checked(values, creating=False)
    if errors:
        raise Invalid(errors=errors)
    if not CODE.fullmatch(code or ""):
        raise NotFound("deed_type_not_found")
    try:
        with unit_of_work() as session:
            region = target_region(actor, region_code)
            authorize(actor, "admin", region)
            kind = _own(session, region, code)
            before = _snapshot(kind) if kind is not None else None
            if kind is None:
                inherited = session.scalar(types_for(region, include_retired=True).where(DeedType.code == code))
                if inherited is None:
                    raise NotFound("deed_type_not_found")
                before = _snapshot(inherited)
                kind = DeedType(
                    code=code,
                    name=inherited.name,
                    points=inherited.points,
                    region_id=region.id,
                    active=inherited.active,
                )
                session.add(kind)
            if values.name is not None:
                kind.name = values.name.strip()
            if values.points is not None:
                kind.points = values.points
            if values.active is not None:
                kind.active = values.active
            session.flush()
            audit.record(
                "deed_type.update",
                "deed_type",
                kind.id,
                actor=actor,
                before=before,
                after={**_snapshot(kind), "region_code": region.code},
                region_id=region.id,
                now=now,
            )
    except IntegrityError as exc:
        raise Conflict("deed_type_exists") from exc
    return kind


def _own(session, region: Region, code: str) -> DeedType | None:
    return session.scalar(
        sa.select(DeedType).where(DeedType.region_id == region.id, DeedType.code == code).with_for_update()
    )


def lines(region: Region) -> list[tuple[DeedType, Region | None]]:
    """Every code that applies in `region`, retired ones included, with the region that set it (None:
    the shipped catalogue): what the admin's page shows."""
    rows = db.session.scalars(types_for(region, include_retired=True)).all()
    ids = {k.region_id for k in rows if k.region_id is not None}
    regions = {r.id: r for r in db.session.scalars(sa.select(Region).where(Region.id.in_(ids)))} if ids else {}
    return [(k, regions.get(k.region_id) if k.region_id is not None else None) for k in rows]
