"""Bring the rollups up to date: `refresh()` (the `stats-refresh` job) and `rebuild()`.

What changed since the last run is read from the source tables' ids: new rows of the ledger,
activities, attendance, sign-ups, residents, redemptions and deeds, and the audit log for rows that
changed in place (every change to attendance, activities, sign-ups, redemptions and deeds is
audited). Those changes name the local days they touch; each touched day is recomputed whole, in
bulk SQL (one `DELETE` and one `INSERT … SELECT … GROUP BY` per rollup and day, over an indexed
time range), then each touched month is summed again from its days. Recomputing a whole day makes
the refresh idempotent: running it twice, or over rows it has already seen, changes nothing.

Each run reads again from where the run before it started (`RefreshState.before_id`), so a row
committed late under a lower id (PostgreSQL hands out ids before commit) is still seen. Days are
recomputed in bounded batches, one transaction each, serialized between processes by an advisory
lock on PostgreSQL (SQLite writes one transaction at a time anyway). The run ends by moving the
watermarks and `as_of` in one transaction: a run that fails leaves them, and the next run redoes
its work. `rebuild()` recomputes every day that has rows or rollups (the nightly `stats-rebuild`
job: it also follows residents who moved to another region). This module writes only `stats_*`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from community.models import Region, User
from core import clock
from core.audit import AuditEntry
from core.bounds import parse_int
from core.db import db, is_postgresql, unit_of_work
from exchange.models import Redemption, RedemptionLine, Store
from points.models import Account, Deed, Transfer
from stats.models import (
    AreaRollup,
    DeedRollup,
    DepartmentRollup,
    FlagRow,
    LedgerRollup,
    PeopleRollup,
    PersonRollup,
    RankRollup,
    RefreshState,
    RegionClosure,
    ServiceRollup,
    StoreRollup,
)
from volunteer.models import Activity, Attendance, Signup

log = logging.getLogger(__name__)

# Activities that count (published, whether or not held since); held ones; attendances that count.
LIVE = ("published", "finished", "closed")
HELD = ("finished", "closed")
PRESENT = ("open", "closed", "auto")
APPROVED_DEEDS = ("approved", "posted")
ISSUED_KINDS = ("service", "deed", "adjustment")
TAKEN_KINDS = ("deduction", "adjustment")

FEEDS = {
    "transfer": Transfer.id,
    "audit": AuditEntry.id,
    "activity": Activity.id,
    "attendance": Attendance.id,
    "signup": Signup.id,
    "users": User.id,
    "redemption": Redemption.id,
    "deed": Deed.id,
}
AS_OF = "as_of"
CLOSURE = "closure"
BATCH_DAYS = 31  # days recomputed per transaction
AUDIT_BATCH = 5000
ID_CHUNK = 1000
LOCK_KEY = 0x57A75  # PostgreSQL advisory lock: one refresh writes at a time

FAMILIES = ("service", "ledger", "person", "people", "store", "deed")
DERIVED = (AreaRollup, DepartmentRollup, RankRollup, FlagRow)


@dataclass
class Dirty:
    """The local days each rollup must recompute."""

    days: dict[str, set[date]] = field(default_factory=lambda: {name: set() for name in FAMILIES})
    derived: set[date] = field(default_factory=set)  # days of `stats.derived` rows that may be stale

    def add(self, family: str, days: Iterable[date]) -> None:
        self.days[family].update(days)

    def count(self) -> dict[str, int]:
        return {name: len(days) for name, days in self.days.items()}

    def touched(self) -> set[date]:
        return set().union(self.derived, *self.days.values())


# Local days ------------------------------------------------------------------------------------


def _utc_date(column: Any) -> Any:
    """The UTC calendar date of a stored time (SQLite keeps naive UTC text)."""
    if is_postgresql():
        return sa.func.date(sa.func.timezone("UTC", column))
    return sa.func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def local_days_of_utc_date(day: date) -> set[date]:
    """The local days that a UTC calendar day overlaps (one or two; any offset, any DST)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {clock.today(start), clock.today(start + timedelta(days=1) - timedelta(microseconds=1))}


def _days_of(session: Session, column: Any, *where: Any) -> set[date]:
    found: set[date] = set()
    for value in session.scalars(sa.select(_utc_date(column)).where(column.is_not(None), *where).distinct()):
        if value is not None:
            found |= local_days_of_utc_date(_as_date(value))
    return found


def _chunks(values: Iterable[int], size: int = ID_CHUNK) -> Iterator[list[int]]:
    values = sorted(set(values))
    for start in range(0, len(values), size):
        yield values[start : start + size]


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


# Watermarks ------------------------------------------------------------------------------------


def _states(session: Session) -> dict[str, RefreshState]:
    return {row.name: row for row in session.scalars(sa.select(RefreshState))}


def as_of(session: Session | None = None) -> datetime | None:
    """When the last complete refresh started: every rollup is as of then (None before the first)."""
    return (session or db.session).scalar(sa.select(RefreshState.at).where(RefreshState.name == AS_OF))


def _highest(session: Session) -> dict[str, int]:
    return {name: int(session.scalar(sa.select(sa.func.max(column))) or 0) for name, column in FEEDS.items()}


# What changed ----------------------------------------------------------------------------------


def _audited(session: Session, since: int, upto: int) -> dict[str, set[int]]:
    """Object ids of audited changes in (since, upto], by object type; for an activity whose time was
    edited, also its former start (as a negative-free list under 'activity_days')."""
    wanted = ("activity", "attendance", "signup", "redemption", "deed")
    found: dict[str, set[int]] = {name: set() for name in wanted}
    moved: set[date] = set()
    after = since
    while True:
        rows = session.execute(
            sa.select(AuditEntry.id, AuditEntry.object_type, AuditEntry.object_id, AuditEntry.action, AuditEntry.before)
            .where(AuditEntry.id > after, AuditEntry.id <= upto, AuditEntry.object_type.in_(wanted))
            .order_by(AuditEntry.id)
            .limit(AUDIT_BATCH)
        ).all()
        for entry_id, object_type, object_id, action, before in rows:
            after = entry_id
            try:
                found[object_type].add(parse_int(object_id or "", minimum=1))
            except ValueError:
                continue
            if action == "activity.update" and isinstance(before, dict) and before.get("starts_at"):
                with contextlib.suppress(TypeError, ValueError):
                    moved.add(clock.today(datetime.fromisoformat(before["starts_at"])))
        if len(rows) < AUDIT_BATCH:
            break
    found["moved_days"] = moved  # type: ignore[assignment]
    return found


def _changes(session: Session, since: dict[str, int], upto: dict[str, int]) -> Dirty:
    dirty = Dirty()
    audited = _audited(session, since["audit"], upto["audit"])

    def new(name: str) -> Any:
        return sa.and_(FEEDS[name] > since[name], FEEDS[name] <= upto[name])

    # Service: the days of activities that are new, changed, or whose attendance or sign-ups are.
    service = _days_of(session, Activity.starts_at, new("activity"))
    service |= _days_of(
        session, Activity.starts_at, Activity.id.in_(sa.select(Attendance.activity_id).where(new("attendance")))
    )
    service |= _days_of(
        session, Activity.starts_at, Activity.id.in_(sa.select(Signup.activity_id).where(new("signup")))
    )
    for ids in _chunks(audited["activity"]):
        service |= _days_of(session, Activity.starts_at, Activity.id.in_(ids))
    for ids in _chunks(audited["attendance"]):
        service |= _days_of(
            session,
            Activity.starts_at,
            Activity.id.in_(sa.select(Attendance.activity_id).where(Attendance.id.in_(ids))),
        )
    for ids in _chunks(audited["signup"]):
        service |= _days_of(
            session, Activity.starts_at, Activity.id.in_(sa.select(Signup.activity_id).where(Signup.id.in_(ids)))
        )
    service |= audited["moved_days"]  # type: ignore[operator]
    ledger = _days_of(session, Transfer.created_at, new("transfer"))
    store = _days_of(session, Redemption.created_at, new("redemption"))
    for ids in _chunks(audited["redemption"]):
        store |= _days_of(session, Redemption.created_at, Redemption.id.in_(ids))
    deed = _days_of(session, Deed.reviewed_at, new("deed"))
    for ids in _chunks(audited["deed"]):
        deed |= _days_of(session, Deed.reviewed_at, Deed.id.in_(ids))
    dirty.add("service", service)
    dirty.add("ledger", ledger)
    dirty.add("person", service | ledger)
    dirty.add("people", _days_of(session, User.created_at, new("users")))
    dirty.add("store", store)
    dirty.add("deed", deed)
    return dirty


def _everything(session: Session) -> Dirty:
    """Every day with source rows, and every day that has rollups (which may have become stale)."""
    dirty = Dirty()
    service = _days_of(session, Activity.starts_at)
    ledger = _days_of(session, Transfer.created_at)
    dirty.add("service", service)
    dirty.add("ledger", ledger)
    dirty.add("person", service | ledger)
    dirty.add("people", _days_of(session, User.created_at))
    dirty.add("store", _days_of(session, Redemption.created_at))
    dirty.add("deed", _days_of(session, Deed.reviewed_at))
    for name, model in ROLLUPS.items():
        dirty.add(
            name, (_as_date(d) for d in session.scalars(sa.select(model.period).where(model.grain == "d").distinct()))
        )
    for column, grain in ((AreaRollup.period, "d"), (RankRollup.period, "m")):
        dirty.derived.update(
            _as_date(d) for d in session.scalars(sa.select(column).where(column.table.c.grain == grain).distinct())
        )
    dirty.derived.update(_as_date(d) for d in session.scalars(sa.select(FlagRow.month).distinct()))
    return dirty


# One day of each rollup, in bulk SQL ------------------------------------------------------------


def _fixed(day: date) -> tuple[Any, Any]:
    return sa.literal("d", sa.String(1)), sa.literal(day, sa.Date)


def _sum(expression: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(expression), 0)


def _service_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    in_day = sa.and_(Activity.starts_at >= start, Activity.starts_at < end, Activity.status.in_(LIVE))
    ids = sa.select(Activity.id).where(in_day)
    came = (
        sa.select(
            Attendance.activity_id.label("activity_id"),
            sa.func.count().label("n"),
            sa.func.sum(Attendance.credited_minutes).label("minutes"),
            sa.func.sum(Attendance.makeup_minutes).label("makeup"),
            sa.func.sum(Attendance.points).label("points"),
        )
        .where(Attendance.activity_id.in_(ids), Attendance.status.in_(PRESENT))
        .group_by(Attendance.activity_id)
        .subquery()
    )
    signed = (
        sa.select(
            Signup.activity_id.label("activity_id"),
            sa.func.count().label("confirmed"),
            sa.func.sum(sa.case((Signup.no_show.is_(True), 1), else_=0)).label("no_shows"),
        )
        .where(Signup.activity_id.in_(ids), Signup.status == "confirmed")
        .group_by(Signup.activity_id)
        .subquery()
    )
    held = Activity.status.in_(HELD)
    select = (
        sa.select(
            *_fixed(day),
            Activity.region_id,
            Activity.department_id,
            sa.func.count(),
            _sum(sa.case((held, 1), else_=0)),
            _sum(came.c.n),
            _sum(came.c.minutes),
            _sum(came.c.makeup),
            _sum(came.c.points),
            _sum(sa.case((held, signed.c.confirmed), else_=0)),
            _sum(sa.case((held, signed.c.no_shows), else_=0)),
        )
        .select_from(Activity)
        .outerjoin(came, came.c.activity_id == Activity.id)
        .outerjoin(signed, signed.c.activity_id == Activity.id)
        .where(in_day)
        .group_by(Activity.region_id, Activity.department_id)
    )
    columns = [
        "grain",
        "period",
        "region_id",
        "department_id",
        "activities",
        "activities_held",
        "participations",
        "service_minutes",
        "makeup_minutes",
        "points",
        "signups",
        "no_shows",
    ]
    return sa.insert(ServiceRollup).from_select(columns, select)


@dataclass
class _Sides:
    """A transfer seen from the resident it moves: who they are, the other side, and the sign."""

    resident: Any
    kind: Any
    owner_type: Any
    owner_id: Any
    incoming: Any
    source: Any


def _sides() -> _Sides:
    source, target = aliased(Account), aliased(Account)
    incoming = target.kind == "resident"
    return _Sides(
        resident=sa.case((incoming, target.owner_id), else_=source.owner_id),
        kind=sa.case((incoming, source.kind), else_=target.kind),
        owner_type=sa.case((incoming, source.owner_type), else_=target.owner_type),
        owner_id=sa.case((incoming, source.owner_id), else_=target.owner_id),
        incoming=incoming,
        source=(source, target),
    )


def _resident_transfers(sides: _Sides, start: datetime, end: datetime) -> Any:
    source, target = sides.source
    return (
        sa.select()
        .select_from(Transfer)
        .join(source, source.id == Transfer.from_account_id)
        .join(target, target.id == Transfer.to_account_id)
        .where(
            Transfer.created_at >= start,
            Transfer.created_at < end,
            sa.or_(source.kind == "resident", target.kind == "resident"),
        )
    )


def ledger_measures(sides: _Sides) -> dict[str, Any]:
    """The signed nets of one transfer, seen from its resident (see `LedgerRollup`)."""
    amount, incoming = Transfer.amount, sides.incoming
    issuer, store, sink = sides.kind == "issuer", sides.kind == "store", sides.kind == "sink"
    undo_deduction = sa.and_(issuer, incoming, Transfer.kind == "reversal")
    deduction = sa.and_(issuer, sa.not_(incoming), Transfer.kind.in_(TAKEN_KINDS))
    return {
        "issued": sa.case(
            (undo_deduction, 0), (deduction, 0), (sa.and_(issuer, incoming), amount), (issuer, -amount), else_=0
        ),
        "deducted": sa.case((deduction, amount), (undo_deduction, -amount), else_=0),
        "redeemed": sa.case((sa.and_(store, sa.not_(incoming)), amount), (store, -amount), else_=0),
        "expired": sa.case((sa.and_(sink, sa.not_(incoming)), amount), (sink, -amount), else_=0),
    }


def _ledger_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    sides = _sides()
    department = sa.case((sa.and_(sides.kind == "issuer", sides.owner_type == "department"), sides.owner_id), else_=0)
    store = sa.case((sides.kind == "store", sides.owner_id), else_=0)
    measures = ledger_measures(sides)
    inner = (
        _resident_transfers(sides, start, end)
        .add_columns(
            sides.resident.label("user_id"),
            department.label("department_id"),
            store.label("store_id"),
            *(value.label(name) for name, value in measures.items()),
        )
        .subquery()
    )
    select = (
        sa.select(
            *_fixed(day),
            User.region_id,
            inner.c.department_id,
            inner.c.store_id,
            *(_sum(inner.c[name]) for name in measures),
        )
        .select_from(inner)
        .join(User, User.id == inner.c.user_id)
        .group_by(User.region_id, inner.c.department_id, inner.c.store_id)
    )
    columns = ["grain", "period", "region_id", "department_id", "store_id", *measures]
    return sa.insert(LedgerRollup).from_select(columns, select)


def _person_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    served = (
        sa.select(
            Attendance.user_id.label("user_id"),
            Activity.department_id.label("department_id"),
            sa.literal(1).label("participations"),
            Attendance.credited_minutes.label("minutes"),
            Attendance.makeup_minutes.label("makeup"),
            sa.literal(0).label("points"),
        )
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(
            Activity.starts_at >= start,
            Activity.starts_at < end,
            Activity.status.in_(LIVE),
            Attendance.status.in_(PRESENT),
        )
    )
    sides = _sides()
    department = sa.case((sides.owner_type == "department", sides.owner_id), else_=0)
    signed = sa.case((sides.incoming, Transfer.amount), else_=-Transfer.amount)
    earned = (
        _resident_transfers(sides, start, end)
        .add_columns(
            sides.resident.label("user_id"),
            department.label("department_id"),
            sa.literal(0).label("participations"),
            sa.literal(0).label("minutes"),
            sa.literal(0).label("makeup"),
            signed.label("points"),
        )
        .where(sides.kind == "issuer")
    )
    both = sa.union_all(served, earned).subquery()
    select = (
        sa.select(
            *_fixed(day),
            both.c.user_id,
            both.c.department_id,
            User.region_id,
            sa.func.coalesce(User.household_id, 0),
            _sum(both.c.participations),
            _sum(both.c.minutes),
            _sum(both.c.makeup),
            _sum(both.c.points),
        )
        .select_from(both)
        .join(User, User.id == both.c.user_id)
        .group_by(both.c.user_id, both.c.department_id, User.region_id, User.household_id)
    )
    columns = [
        "grain",
        "period",
        "user_id",
        "department_id",
        "region_id",
        "household_id",
        "participations",
        "service_minutes",
        "makeup_minutes",
        "points",
    ]
    return sa.insert(PersonRollup).from_select(columns, select)


def _people_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    select = (
        sa.select(*_fixed(day), User.region_id, sa.func.count())
        .where(User.created_at >= start, User.created_at < end)
        .group_by(User.region_id)
    )
    return sa.insert(PeopleRollup).from_select(["grain", "period", "region_id", "registered"], select)


def _store_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    in_day = sa.and_(Redemption.created_at >= start, Redemption.created_at < end)
    goods = (
        sa.select(RedemptionLine.redemption_id.label("redemption_id"), sa.func.sum(RedemptionLine.qty).label("qty"))
        .where(RedemptionLine.redemption_id.in_(sa.select(Redemption.id).where(in_day)))
        .group_by(RedemptionLine.redemption_id)
        .subquery()
    )
    done = Redemption.status == "completed"
    select = (
        sa.select(
            *_fixed(day),
            Redemption.store_id,
            Store.region_id,
            _sum(sa.case((done, 1), else_=0)),
            _sum(sa.case((done, 0), else_=1)),
            _sum(sa.case((done, Redemption.total_points), else_=0)),
            _sum(sa.case((done, goods.c.qty), else_=0)),
        )
        .select_from(Redemption)
        .join(Store, Store.id == Redemption.store_id)
        .outerjoin(goods, goods.c.redemption_id == Redemption.id)
        .where(in_day)
        .group_by(Redemption.store_id, Store.region_id)
    )
    columns = ["grain", "period", "store_id", "region_id", "redemptions", "voided", "points", "goods"]
    return sa.insert(StoreRollup).from_select(columns, select)


def _deed_day(day: date, start: datetime, end: datetime) -> sa.Insert:
    select = (
        sa.select(
            *_fixed(day),
            Deed.region_id,
            _sum(sa.case((Deed.points > 0, 1), else_=0)),
            _sum(sa.case((Deed.points < 0, 1), else_=0)),
            _sum(Deed.points),
        )
        .where(Deed.reviewed_at >= start, Deed.reviewed_at < end, Deed.status.in_(APPROVED_DEEDS))
        .group_by(Deed.region_id)
    )
    return sa.insert(DeedRollup).from_select(["grain", "period", "region_id", "deeds", "deductions", "points"], select)


ROLLUPS = {
    "service": ServiceRollup,
    "ledger": LedgerRollup,
    "person": PersonRollup,
    "people": PeopleRollup,
    "store": StoreRollup,
    "deed": DeedRollup,
}
DAY_BUILDERS = {
    "service": _service_day,
    "ledger": _ledger_day,
    "person": _person_day,
    "people": _people_day,
    "store": _store_day,
    "deed": _deed_day,
}
# Months are sums of their days: by these keys, the other columns summed, these taken as they are.
MONTH_KEYS = {
    "service": ("region_id", "department_id"),
    "ledger": ("region_id", "department_id", "store_id"),
    "person": ("user_id", "department_id"),
    "people": ("region_id",),
    "store": ("store_id",),
    "deed": ("region_id",),
}
MONTH_CARRIED = {"person": ("region_id", "household_id"), "store": ("region_id",)}


def _month(family: str, month: date) -> sa.Insert:
    model = ROLLUPS[family]
    keys = MONTH_KEYS[family]
    carried = MONTH_CARRIED.get(family, ())
    measures = [c.name for c in model.__table__.columns if c.name not in ("grain", "period", *keys, *carried)]
    select = (
        sa.select(
            sa.literal("m", sa.String(1)),
            sa.literal(month, sa.Date),
            *(model.__table__.c[k] for k in keys),
            *(sa.func.max(model.__table__.c[c]) for c in carried),
            *(_sum(model.__table__.c[m]) for m in measures),
        )
        .where(model.grain == "d", model.period >= month, model.period < next_month(month))
        .group_by(*(model.__table__.c[k] for k in keys))
    )
    return sa.insert(model).from_select(["grain", "period", *keys, *carried, *measures], select)


def _lock(session: Session) -> None:
    """One refresh writes at a time, with room to hash and sort in memory."""
    if is_postgresql(session):
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        session.execute(sa.text("SET LOCAL work_mem = '64MB'"))


def _recompute(dirty: Dirty) -> tuple[int, dict[str, float]]:
    """Recompute the dirty days, then their months, in batches of one transaction each."""
    statements, seconds = 0, {}
    for family in FAMILIES:
        started = time.monotonic()
        model, build = ROLLUPS[family], DAY_BUILDERS[family]
        days = sorted(dirty.days[family])
        for first in range(0, len(days), BATCH_DAYS):
            with unit_of_work() as session:
                _lock(session)
                for day in days[first : first + BATCH_DAYS]:
                    start, end = clock.day_range(day)
                    session.execute(sa.delete(model).where(model.grain == "d", model.period == day))
                    session.execute(build(day, start, end))
                    statements += 2
        months = sorted({month_of(day) for day in days})
        for first in range(0, len(months), BATCH_DAYS):
            with unit_of_work() as session:
                _lock(session)
                for month in months[first : first + BATCH_DAYS]:
                    session.execute(sa.delete(model).where(model.grain == "m", model.period == month))
                    session.execute(_month(family, month))
                    statements += 2
        seconds[family] = time.monotonic() - started
    started = time.monotonic()
    statements += _recompute_derived(dirty.touched())
    seconds["derived"] = time.monotonic() - started
    return statements, seconds


def _recompute_derived(days: set[date]) -> int:
    """The subtree figures, rankings and flags of every day, month and year the changes touched."""
    from stats import derived

    touched, statements = derived.periods(days), 0
    steps = [(derived.write_figures, "d", day) for day in touched["d"]]
    for month in touched["m"]:
        steps += [(derived.write_figures, "m", month), (derived.write_rankings, "m", month)]
    for year in touched["y"]:
        steps += [(derived.write_figures, "y", year), (derived.write_rankings, "y", year)]
    for first in range(0, len(steps), BATCH_DAYS):
        with unit_of_work() as session:
            _lock(session)
            for write, grain, period in steps[first : first + BATCH_DAYS]:
                statements += write(session, grain, period)
    # Flags read the rollups above and the raw rows behind them: each month in its own transaction.
    for month in touched["m"]:
        with unit_of_work() as session:
            _lock(session)
            statements += derived.write_flags(session, month)
    return statements


# The region tree -------------------------------------------------------------------------------


def _refresh_closure(session: Session, states: dict[str, RefreshState]) -> bool:
    """Rebuild the (ancestor, region) pairs when the tree changed (regions are few: thousands)."""
    count, highest = session.execute(sa.select(sa.func.count(), sa.func.max(Region.id))).one()
    fingerprint = f"{count}:{highest or 0}"
    state = states.get(CLOSURE)
    if state is not None and state.fingerprint == fingerprint:
        return False
    rows = [
        {"ancestor_id": int(ancestor), "region_id": region_id}
        for region_id, path in session.execute(sa.select(Region.id, Region.path))
        for ancestor in path.strip("/").split("/")
        if ancestor
    ]
    session.execute(sa.delete(RegionClosure))
    for first in range(0, len(rows), 5000):
        session.execute(sa.insert(RegionClosure), rows[first : first + 5000])
    if state is None:
        session.add(RefreshState(name=CLOSURE, fingerprint=fingerprint))
    else:
        state.fingerprint = fingerprint
    return True


# The job ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    days: dict[str, int]
    statements: int
    seconds: float
    full: bool
    as_of: datetime
    spent: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        kind = "rebuilt" if self.full else "refreshed"
        days = ", ".join(f"{name} {n} days {self.spent.get(name, 0):.1f}s" for name, n in self.days.items())
        days += f"; subtrees, rankings and flags {self.spent.get('derived', 0):.1f}s"
        return f"{kind} rollups as of {self.as_of.isoformat(timespec='seconds')} in {self.seconds:.2f}s ({days})"


def refresh(*, now: datetime, full: bool = False) -> Outcome:
    """Bring every rollup up to date with what was committed before `now` (all of it when `full`,
    or when nothing was ever refreshed)."""
    started = time.monotonic()
    session = db.session
    session.rollback()
    states = _states(session)
    upto = _highest(session)
    first_run = AS_OF not in states
    since = {name: (states[name].before_id if name in states else 0) for name in FEEDS}
    dirty = _everything(session) if full or first_run else _changes(session, since, upto)
    session.rollback()
    with unit_of_work() as session:
        _lock(session)
        _refresh_closure(session, _states(session))
    statements, spent = _recompute(dirty)
    if is_postgresql() and (full or first_run or sum(dirty.count().values()) > BATCH_DAYS):
        # Many rows changed at once: let the planner know, before the first request reads them (a
        # fresh table's guessed row counts once turned a city's table by region into a 40 s plan).
        with unit_of_work() as session:
            for model in (*ROLLUPS.values(), *DERIVED, RegionClosure):
                session.execute(sa.text(f"ANALYZE {model.__table__.name}"))
    with unit_of_work() as session:
        _lock(session)
        states = _states(session)
        for name, highest in upto.items():
            state = states.get(name) or RefreshState(name=name, last_id=0, before_id=0)
            # The next run reads again from what this run saw last time (see the module docstring);
            # a full run has read everything, so the next starts from what it saw.
            state.before_id = highest if first_run or full else state.last_id
            state.last_id = highest
            state.at = now
            session.add(state)
        mark = states.get(AS_OF) or RefreshState(name=AS_OF, last_id=0, before_id=0)
        mark.at = now
        session.add(mark)
    return Outcome(dirty.count(), statements, time.monotonic() - started, full or first_run, now, spent)


# The ledger check ------------------------------------------------------------------------------


def _rows(session: Session, insert: sa.Insert, model: Any, *where: Any) -> tuple[list[tuple], list[tuple]]:
    """What `insert` would write now, and what `model` holds where it wrote, both sorted."""
    names = list(insert._select_names)  # the column names given to `from_select`
    table = model.__table__

    def plain(row: Any) -> tuple:
        return tuple(str(v)[:10] if isinstance(v, date) else int(v) if isinstance(v, int | Decimal) else v for v in row)

    wanted = sorted(plain(r) for r in session.execute(insert.select))
    stored = sorted(plain(r) for r in session.execute(sa.select(*(table.c[n] for n in names)).where(*where)))
    return wanted, stored


def problems(session: Session) -> list[str]:
    """Each rollup day, month or year whose rows differ from what the rows they sum give now (for
    `flask ledger check`). What changed since the last refresh is left out: that refresh's work is
    still to come, and `as_of` says so."""
    from stats import derived

    states = _states(session)
    if AS_OF not in states:
        return []
    since = {name: (states[name].before_id if name in states else 0) for name in FEEDS}
    pending = _changes(session, since, _highest(session))
    everything = _everything(session)
    waiting = pending.touched()
    waiting_months = {month_of(d) for d in waiting}
    found: list[str] = []

    def compare(what: str, insert: sa.Insert, model: Any, *where: Any) -> None:
        wanted, stored = _rows(session, insert, model, *where)
        if wanted != stored:
            extra, missing = len(set(stored) - set(wanted)), len(set(wanted) - set(stored))
            found.append(f"{what}: {extra} rows not as the source rows give them, {missing} rows missing")

    for family in FAMILIES:
        model, build = ROLLUPS[family], DAY_BUILDERS[family]
        days = sorted(everything.days[family] - pending.days[family])
        for day in days:
            start, end = clock.day_range(day)
            compare(f"{family} rollup of {day}", build(day, start, end), model, model.grain == "d", model.period == day)
        for month in sorted({month_of(d) for d in everything.days[family]} - waiting_months):
            compare(
                f"{family} rollup of {month:%Y-%m}",
                _month(family, month),
                model,
                model.grain == "m",
                model.period == month,
            )
    touched = derived.periods(everything.touched())
    for grain, periods in touched.items():
        for period in periods:
            if (grain == "d" and period in waiting) or (
                grain != "d"
                and any(derived.span(grain, period)[1] <= d < derived.span(grain, period)[2] for d in waiting)
            ):
                continue
            for name, model, build in (
                ("subtree figures", AreaRollup, derived.area_insert),
                ("department figures", DepartmentRollup, derived.department_insert),
            ):
                compare(
                    f"{name} of {grain} {period}",
                    build(grain, period),
                    model,
                    model.grain == grain,
                    model.period == period,
                )
    return found
