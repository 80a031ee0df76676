"""Figures for a region subtree and a period, read from the rollups only (never the raw tables).

A period is split into whole months (read from the monthly rows) and at most two runs of edge days
(read from the daily rows), so any period costs the same few index ranges. Places come from the
region closure: a subtree (the total), each child region, or each department located in the
subtree. What each figure means:

- volunteers: residents registered in the subtree by the period's last day; active volunteers:
  residents of the subtree who served at least once in the period;
- activities (published, not cancelled) and those held (finished or closed), participations (人次:
  every attendance not annulled), service hours (credited, the scanned and the made-up apart),
  the no-show rate: by where and when the activity took place;
- points issued (net of corrections), deducted, redeemed (net of voids), expired: from the ledger,
  by the resident's region and the transfer's day; outstanding: what residents of the subtree held
  at the end of the period;
- redemptions and goods out: completed baskets of stores in the subtree; deeds and deductions
  approved: by the deed's region and the day of review.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, aliased

from community.models import Department, Region
from core.db import db, is_postgresql
from exchange.models import Store
from stats.models import (
    AreaRollup,
    DeedRollup,
    DepartmentRollup,
    LedgerRollup,
    PeopleRollup,
    PersonRollup,
    RegionClosure,
    ServiceRollup,
    StoreRollup,
)
from stats.refresh import as_of as refresh_as_of
from stats.refresh import month_of, next_month

EPOCH = date(1970, 1, 1)
MIN_GROUP_DEFAULT = 5

# Every figure, in the order tables and exports show them, with its Chinese header.
FIELDS: tuple[tuple[str, str], ...] = (
    ("volunteers", "注册志愿者"),
    ("active_volunteers", "活跃志愿者"),
    ("activities", "发布活动"),
    ("activities_held", "已举办活动"),
    ("participations", "参与人次"),
    ("service_hours", "服务时长（小时）"),
    ("scanned_hours", "扫码时长（小时）"),
    ("makeup_hours", "补录时长（小时）"),
    ("points_issued", "发放积分"),
    ("points_redeemed", "兑换积分"),
    ("points_expired", "过期积分"),
    ("points_deducted", "扣减积分"),
    ("points_outstanding", "结余积分"),
    ("redemptions", "兑换笔数"),
    ("goods_out", "兑出商品（件）"),
    ("deeds_approved", "好人好事"),
    ("deductions_approved", "扣分事项"),
    ("no_show_rate", "爽约率"),
)
FIELD_NAMES = tuple(name for name, _ in FIELDS)


def min_group() -> int:
    return int(current_app.config.get("STATS_MIN_GROUP", MIN_GROUP_DEFAULT))


def analytic() -> None:
    """Set this transaction up for sums over rollups on PostgreSQL, once: room to hash in memory (a
    city's year is a million rows; the default work_mem sorts them on disk). Each statement is
    planned for its own values: the engine prepares none (`core.db`)."""
    session = db.session
    if is_postgresql(session) and not session.info.get("stats_work_mem"):
        session.execute(sa.text("SET LOCAL work_mem = '64MB'"))
        session.info["stats_work_mem"] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_work_mem(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop("stats_work_mem", None)
        session.info.pop("stats_as_of", None)


def as_of() -> datetime | None:
    """`stats.refresh.as_of`, read once per transaction (a request asks it for its cache key and
    for what it says about freshness)."""
    session = db.session
    if "stats_as_of" not in session.info:
        session.info["stats_as_of"] = refresh_as_of(session)
    return session.info["stats_as_of"]


# Results change only when the rollups do, and every refresh moves `as_of`: a result is kept per
# (database, as_of, question), so that a dashboard opened twice, or by ten people, reads once.
_CACHE: OrderedDict[tuple, Any] = OrderedDict()
CACHE_SIZE = 256


def cached(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        moment = as_of()
        if moment is None:
            return func(*args, **kwargs)
        places = tuple(a.id if isinstance(a, Region) else a for a in args)
        key = (str(db.engine.url), moment, func.__qualname__, places, tuple(sorted(kwargs.items())), min_group())
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return copy.deepcopy(_CACHE[key])
        result = func(*args, **kwargs)
        _CACHE[key] = copy.deepcopy(result)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
        return result

    return wrapper


# Periods ---------------------------------------------------------------------------------------


def within(model: Any, first: date, last: date) -> Any:
    """Rollup rows covering exactly [first, last]: whole months from monthly rows, edges from days."""
    whole_from = first if first.day == 1 else next_month(first)
    after = last + timedelta(days=1)
    whole_to = after if after.day == 1 else month_of(last)  # exclusive
    if whole_from >= whole_to:
        return sa.and_(model.grain == "d", model.period >= first, model.period <= last)
    parts = [sa.and_(model.grain == "m", model.period >= whole_from, model.period < whole_to)]
    if first < whole_from:
        parts.append(sa.and_(model.grain == "d", model.period >= first, model.period < whole_from))
    if whole_to <= last:
        parts.append(sa.and_(model.grain == "d", model.period >= whole_to, model.period <= last))
    return sa.or_(*parts)


def months_between(first: date, last: date) -> list[tuple[date, date, date]]:
    """(month, first day, last day) of each calendar month that [first, last] touches."""
    out = []
    month = month_of(first)
    while month <= last:
        out.append((month, max(first, month), min(last, next_month(month) - timedelta(days=1))))
        month = next_month(month)
    return out


# Places ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Places:
    """How rows are grouped by place: `total` (the subtree), `child` (each child region of the
    root) or `department` (each department located in the subtree)."""

    root: Region
    by: str = "total"

    def apply(self, select: sa.Select, model: Any) -> tuple[sa.Select, Any]:
        closure = aliased(RegionClosure)
        if self.by == "department":
            select = select.join(Department, Department.id == model.department_id).join(
                closure, sa.and_(closure.region_id == Department.region_id, closure.ancestor_id == self.root.id)
            )
            return select, Department.id
        if self.by == "child":
            child = aliased(Region)
            select = select.join(closure, closure.region_id == model.region_id).join(
                child, sa.and_(child.id == closure.ancestor_id, child.parent_id == self.root.id)
            )
            return select, child.id
        select = select.join(
            closure, sa.and_(closure.region_id == model.region_id, closure.ancestor_id == self.root.id)
        )
        return select, sa.literal(self.root.id)


def _distinct_people(places: Places, where: Any) -> dict[int, int]:
    analytic()
    select, key = places.apply(sa.select(), PersonRollup)
    select = select.add_columns(key.label("key"), sa.func.count(sa.distinct(PersonRollup.user_id)).label("n"))
    rows = db.session.execute(
        select.select_from(PersonRollup).where(where, PersonRollup.participations > 0).group_by(key)
    ).all()
    return {int(row.key): int(row.n) for row in rows}


SERVICE = {
    "activities": ServiceRollup.activities,
    "activities_held": ServiceRollup.activities_held,
    "participations": ServiceRollup.participations,
    "service_minutes": ServiceRollup.service_minutes,
    "makeup_minutes": ServiceRollup.makeup_minutes,
    "signups": ServiceRollup.signups,
    "no_shows": ServiceRollup.no_shows,
}
LEDGER = {
    "issued": LedgerRollup.issued,
    "deducted": LedgerRollup.deducted,
    "redeemed": LedgerRollup.redeemed,
    "expired": LedgerRollup.expired,
}
NET = {"net": LedgerRollup.issued - LedgerRollup.deducted - LedgerRollup.redeemed - LedgerRollup.expired}
STORE = {"redemptions": StoreRollup.redemptions, "goods": StoreRollup.goods}
DEED = {"deeds": DeedRollup.deeds, "deductions": DeedRollup.deductions}
PEOPLE = {"registered": PeopleRollup.registered}


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _figures(raw: dict[str, int | None]) -> dict[str, Any]:
    """The published figures from the raw sums of one place and period (None: not applicable)."""

    def get(name: str) -> int | None:
        return raw.get(name)

    minutes, makeup = get("service_minutes"), get("makeup_minutes")
    signups, no_shows = get("signups"), get("no_shows")
    return {
        "volunteers": get("registered"),
        "active_volunteers": get("active"),
        "activities": get("activities"),
        "activities_held": get("activities_held"),
        "participations": get("participations"),
        "service_hours": None if minutes is None else _hours(minutes),
        "scanned_hours": None if minutes is None else _hours(minutes - (makeup or 0)),
        "makeup_hours": None if makeup is None else _hours(makeup),
        "points_issued": get("issued"),
        "points_redeemed": get("redeemed"),
        "points_expired": get("expired"),
        "points_deducted": get("deducted"),
        "points_outstanding": get("net"),
        "redemptions": get("redemptions"),
        "goods_out": get("goods"),
        "deeds_approved": get("deeds"),
        "deductions_approved": get("deductions"),
        "no_show_rate": round(no_shows / signups, 4) if signups else None,
    }


@dataclass
class Series:
    """One place's derived rows (`stats_area` or `stats_department`) around a period: years, the
    months of the period's years, and the days of the months the period only partly covers. A
    period sums its whole years, then its other whole months, then its edge days."""

    months: dict[date, dict[str, int]]
    days: dict[date, dict[str, int]]
    years: dict[date, dict[str, int]]

    def flows(self, first: date, last: date) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        years = {y for y in self.years if first <= y and date(y.year, 12, 31) <= last}
        for year in years:
            for name, value in self.years[year].items():
                out[name] += value
        for month, row in self.months.items():
            if _whole(month, first, last) and month.replace(month=1) not in years:
                for name, value in row.items():
                    out[name] += value
        for day, row in self.days.items():
            if first <= day <= last and not _whole(month_of(day), first, last):
                for name, value in row.items():
                    out[name] += value
        return out

    def active(self, first: date, last: date) -> int | None:
        """Distinct residents who served in [first, last], when a stored day, month or year holds
        exactly them (the period is that day, month or year, or nobody served in the rest of it);
        None when only the per-resident rows can say."""
        if first == last:
            return self.days.get(first, {}).get("active", 0)
        if month_of(first) == month_of(last):
            container, end = month_of(first), next_month(first)
            value = self.months.get(container, {}).get("active", 0)
        elif first.year == last.year:
            container, end = date(first.year, 1, 1), date(first.year + 1, 1, 1)
            value = self.years.get(container, {}).get("active", 0)
        else:
            return None
        for month, row in self.months.items():
            outside = next_month(month) <= first or month > last
            if container <= month < end and outside and row.get("active"):
                return None
        for day, row in self.days.items():
            if container <= day < end and not first <= day <= last and row.get("active"):
                return None
        return value


def _whole(month: date, first: date, last: date) -> bool:
    return first <= month and next_month(month) - timedelta(days=1) <= last


def _series(model: Any, key: Any, keys: list[int], first: date, last: date, since: date) -> dict[int, Series]:
    """The rows `Series` needs for periods inside [first, last], and for [since, last]."""
    if not keys:
        return {}
    first_year, year_end = date(first.year, 1, 1), date(last.year, 12, 31)
    partial = {month for month in (month_of(first), month_of(last)) if not _whole(month, first, last)}
    rows = db.session.execute(
        sa.select(key.label("key"), model.__table__).where(
            key.in_(keys),
            sa.or_(
                sa.and_(model.grain == "y", model.period >= min(since, first_year), model.period <= year_end),
                sa.and_(model.grain == "m", model.period >= first_year, model.period <= year_end),
                *(
                    sa.and_(model.grain == "d", model.period >= month, model.period < next_month(month))
                    for month in sorted(partial)
                ),
            ),
        )
    ).mappings()
    out = {k: Series({}, {}, {}) for k in keys}
    skip = {"key", "grain", "period", key.key}
    for row in rows:
        period = row["period"] if isinstance(row["period"], date) else date.fromisoformat(str(row["period"]))
        values = {name: int(value) for name, value in row.items() if name not in skip}
        bucket = {"m": out[row["key"]].months, "d": out[row["key"]].days, "y": out[row["key"]].years}[row["grain"]]
        bucket[period] = values
    return out


def _raw(series: Series, first: date, last: date, departments: bool = False) -> dict[str, int | None]:
    """The raw sums `_figures` reads, for one place and period (`active` None: not stored)."""
    flows = series.flows(first, last)
    raw: dict[str, Any] = {name: flows.get(name, 0) for name in (*SERVICE, *LEDGER)}
    raw["active"] = series.active(first, last)
    if not departments:
        before = series.flows(EPOCH, last)
        raw.update({name: flows.get(name, 0) for name in ("redemptions", "goods", "deeds", "deductions")})
        raw["registered"] = before.get("registered", 0)
        raw["net"] = before.get("issued", 0) - sum(before.get(n, 0) for n in ("deducted", "redeemed", "expired"))
    return raw


def _fill_active(raws: dict[int, dict[str, Any]], places: Places, first: date, last: date) -> None:
    """Active volunteers that no stored period holds: counted from the per-resident rows."""
    if any(raw["active"] is None for raw in raws.values()):
        counted = _distinct_people(places, within(PersonRollup, first, last))
        for key, raw in raws.items():
            if raw["active"] is None:
                raw["active"] = counted.get(key, 0)


def _zero(places: Places) -> dict[str, int]:
    base = {**dict.fromkeys(SERVICE, 0), **dict.fromkeys(LEDGER, 0), "active": 0}
    if places.by != "department":
        base.update({**dict.fromkeys(STORE, 0), **dict.fromkeys(DEED, 0), "registered": 0, "net": 0})
    return base


@cached
def summary(region: Region, first: date, last: date) -> dict[str, Any]:
    series = _series(AreaRollup, AreaRollup.region_id, [region.id], first, last, EPOCH)[region.id]
    raws = {region.id: _raw(series, first, last)}
    _fill_active(raws, Places(region), first, last)
    return {**_figures(raws[region.id]), **summary_context(region, first, last)}


def summary_context(region: Region, first: date, last: date) -> dict[str, Any]:
    moment = as_of()
    return {
        "region_code": region.code,
        "region_name": region.name,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "as_of": moment.isoformat() if moment else None,
    }


def _suppress(
    row: dict[str, Any], people: int | None, keep: tuple[str, ...] = ("activities", "activities_held")
) -> dict[str, Any]:
    """Groups of fewer than `STATS_MIN_GROUP` people (but some) show no figure about people (DESIGN §8)."""
    if people is not None and 0 < people < min_group():
        return {**{k: (v if k in keep else None) for k, v in row.items() if k in FIELD_NAMES}, "suppressed": True}
    return {**{k: row[k] for k in FIELD_NAMES}, "suppressed": False}


@cached
def by_region(region: Region, first: date, last: date) -> list[dict[str, Any]]:
    """One row per child region (all of them, in code order), figures as in `summary`."""
    children = db.session.scalars(sa.select(Region).where(Region.parent_id == region.id).order_by(Region.code)).all()
    series = _series(AreaRollup, AreaRollup.region_id, [c.id for c in children], first, last, EPOCH)
    raws = {child.id: _raw(series[child.id], first, last) for child in children}
    _fill_active(raws, Places(region, "child"), first, last)
    rows = []
    for child in children:
        sums = raws[child.id]
        figures = _suppress(_figures(sums), sums["registered"])
        rows.append({"region_code": child.code, "name": child.name, "level": child.level, **figures})
    return rows


@cached
def by_department(region: Region, first: date, last: date) -> list[dict[str, Any]]:
    """One row per department located in the subtree: its activities, the service at them and the
    points it issued; the residents' own counters (registrations, stores, deeds) do not apply."""
    closure = aliased(RegionClosure)
    departments = db.session.execute(
        sa.select(Department.id, Department.name, Region.code)
        .join(Region, Region.id == Department.region_id)
        .join(closure, sa.and_(closure.region_id == Department.region_id, closure.ancestor_id == region.id))
        .order_by(Region.code, Department.name)
    ).all()
    keys = [department_id for department_id, _name, _code in departments]
    series = _series(DepartmentRollup, DepartmentRollup.department_id, keys, first, last, first)
    raws = {key: _raw(series[key], first, last, departments=True) for key in keys}
    _fill_active(raws, Places(region, "department"), first, last)
    rows = []
    for department_id, name, code in departments:
        sums = {**_zero(Places(region, "department")), **raws[department_id]}
        figures = _suppress(_figures(sums), sums["active"])
        rows.append({"department_id": department_id, "name": name, "region_code": code, **figures})
    return rows


STORE_FIELDS: tuple[tuple[str, str], ...] = (
    ("redemptions", "兑换笔数"),
    ("voided", "作废笔数"),
    ("points_redeemed", "兑换积分"),
    ("goods_out", "兑出商品（件）"),
)


@cached
def by_store(region: Region, first: date, last: date) -> list[dict[str, Any]]:
    """One row per moral supermarket in the subtree: completed and voided baskets, points and goods."""
    closure = aliased(RegionClosure)
    measures = {
        "redemptions": StoreRollup.redemptions,
        "voided": StoreRollup.voided,
        "points": StoreRollup.points,
        "goods": StoreRollup.goods,
    }
    rows = db.session.execute(
        sa.select(StoreRollup.store_id, *(sa.func.coalesce(sa.func.sum(v), 0).label(k) for k, v in measures.items()))
        .join(closure, sa.and_(closure.region_id == StoreRollup.region_id, closure.ancestor_id == region.id))
        .where(within(StoreRollup, first, last))
        .group_by(StoreRollup.store_id)
    ).all()
    sums = {row.store_id: row for row in rows}
    stores = db.session.execute(
        sa.select(Store.id, Store.name, Region.code, Region.name)
        .join(Region, Region.id == Store.region_id)
        .join(closure, sa.and_(closure.region_id == Store.region_id, closure.ancestor_id == region.id))
        .order_by(Region.code, Store.name)
    ).all()
    out = []
    for store_id, name, code, place in stores:
        row = sums.get(store_id)
        out.append(
            {
                "store_id": store_id,
                "name": name,
                "region_code": code,
                "region_name": place,
                "redemptions": int(row.redemptions) if row else 0,
                "voided": int(row.voided) if row else 0,
                "points_redeemed": int(row.points) if row else 0,
                "goods_out": int(row.goods) if row else 0,
            }
        )
    return out


@cached
def monthly(region: Region, first: date, last: date) -> list[dict[str, Any]]:
    """One row per calendar month the period touches (its part inside the period): flows in the
    month, counts of people at its end."""
    series = _series(AreaRollup, AreaRollup.region_id, [region.id], first, last, EPOCH)[region.id]
    rows = []
    for month, start, end in months_between(first, last):
        raws = {region.id: _raw(series, start, end)}
        _fill_active(raws, Places(region), start, end)
        rows.append({"month": month.strftime("%Y-%m"), **_figures(raws[region.id])})
    return rows


def as_of_text() -> str | None:
    moment = as_of()
    return moment.isoformat() if moment else None
