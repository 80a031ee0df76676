"""Figures recomputed in Python from the raw rows (activities, attendance, sign-ups, transfers,
redemptions, deeds, residents), independently of the rollups and their SQL: what the statistics
must say. Slow on purpose: it reads every row, so it is for small test worlds only."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import sqlalchemy as sa

from community.models import Department, Region, User
from core import clock
from core.db import db
from exchange.models import Redemption, Store
from points.models import Account, Deed, Transfer
from volunteer.models import Activity, Attendance, Signup

LIVE = ("published", "finished", "closed")
HELD = ("finished", "closed")
PRESENT = ("open", "closed", "auto")


def subtree_ids(root: Region) -> set[int]:
    return set(db.session.scalars(sa.select(Region.id).where(Region.path.startswith(root.path))))


def _day(moment) -> date:
    return clock.today(moment)


def _zero() -> dict[str, int]:
    return defaultdict(int)


def _ledger_rows():
    """(day, resident user id, counterparty account, transfer) for every transfer of a resident."""
    accounts = {a.id: a for a in db.session.scalars(sa.select(Account))}
    for t in db.session.scalars(sa.select(Transfer).order_by(Transfer.id)):
        source, target = accounts[t.from_account_id], accounts[t.to_account_id]
        if target.kind == "resident":
            yield _day(t.created_at), target.owner_id, source, t, True
        elif source.kind == "resident":
            yield _day(t.created_at), source.owner_id, target, t, False


def _ledger_nets(other: Account, t: Transfer, incoming: bool) -> dict[str, int]:
    sign = 1 if incoming else -1
    if other.kind == "issuer":
        if (incoming and t.kind == "reversal") or (not incoming and t.kind in ("deduction", "adjustment")):
            return {"deducted": -sign * t.amount}
        return {"issued": sign * t.amount}
    if other.kind == "store":
        return {"redeemed": -sign * t.amount}
    return {"expired": -sign * t.amount}


def sums(place_of, first: date, last: date, *, departments: bool = False) -> dict[int, dict[str, int]]:
    """Raw sums per place: `place_of(kind, row)` names the place key of a row or None (outside)."""
    out: dict[int, dict[str, int]] = defaultdict(_zero)
    users = {u.id: u for u in db.session.scalars(sa.select(User))}
    people: dict[int, set[int]] = defaultdict(set)
    for activity in db.session.scalars(sa.select(Activity).where(Activity.status.in_(LIVE))):
        if not first <= _day(activity.starts_at) <= last:
            continue
        # Active volunteers are the place's residents who served, wherever the activity was.
        for a in db.session.scalars(sa.select(Attendance).where(Attendance.activity_id == activity.id)):
            who = place_of("person", (users[a.user_id], activity.department_id))
            if a.status in PRESENT and who is not None:
                people[who].add(a.user_id)
        key = place_of("activity", activity)
        if key is None:
            continue
        row = out[key]
        row["activities"] += 1
        held = activity.status in HELD
        row["activities_held"] += held
        for a in db.session.scalars(sa.select(Attendance).where(Attendance.activity_id == activity.id)):
            if a.status in PRESENT:
                row["participations"] += 1
                row["service_minutes"] += a.credited_minutes
                row["makeup_minutes"] += a.makeup_minutes
        if held:
            for s in db.session.scalars(
                sa.select(Signup).where(Signup.activity_id == activity.id, Signup.status == "confirmed")
            ):
                row["signups"] += 1
                row["no_shows"] += bool(s.no_show)
    for day, user_id, other, t, incoming in _ledger_rows():
        department = other.owner_id if other.kind == "issuer" and other.owner_type == "department" else 0
        key = place_of("ledger", (users[user_id], department))
        if key is None:
            continue
        nets = _ledger_nets(other, t, incoming)
        if first <= day <= last:
            for name, value in nets.items():
                out[key][name] += value
        if day <= last and not departments:
            out[key]["net"] += sum(v if n == "issued" else -v for n, v in nets.items())
    for key, who in people.items():
        out[key]["active"] = len(who)
    if departments:
        return out
    for user in users.values():
        key = place_of("resident", user)
        if key is not None and _day(user.created_at) <= last:
            out[key]["registered"] += 1
    for r in db.session.scalars(sa.select(Redemption)):
        key = place_of("store", db.session.get(Store, r.store_id))
        if key is not None and first <= _day(r.created_at) <= last and r.status == "completed":
            out[key]["redemptions"] += 1
            out[key]["goods"] += sum(line.qty for line in r.lines)
    for d in db.session.scalars(sa.select(Deed).where(Deed.status.in_(("approved", "posted")))):
        key = place_of("deed", d)
        if key is not None and d.reviewed_at is not None and first <= _day(d.reviewed_at) <= last:
            out[key]["deeds" if d.points > 0 else "deductions"] += 1
    return out


def region_place(root: Region, *, children: bool = False):
    """Place keys for the subtree (the root's id) or for each child region of the root."""
    tree = subtree_ids(root)
    regions = {r.id: r for r in db.session.scalars(sa.select(Region))}

    def key(region_id: int) -> int | None:
        if region_id not in tree:
            return None
        if not children:
            return root.id
        for ancestor in regions[region_id].ancestor_ids:
            if regions[ancestor].parent_id == root.id:
                return ancestor
        return None

    def place_of(kind: str, row) -> int | None:
        if kind == "activity":
            return key(row.region_id)
        if kind in ("person", "ledger"):
            return key(row[0].region_id)
        return key(row.region_id)

    return place_of


def department_place(root: Region):
    tree = subtree_ids(root)
    departments = {d.id: d for d in db.session.scalars(sa.select(Department))}

    def place_of(kind: str, row) -> int | None:
        if kind == "activity":
            department_id = row.department_id
        elif kind in ("person", "ledger"):
            department_id = row[1]
        else:
            return None
        department = departments.get(department_id)
        return department_id if department is not None and department.region_id in tree else None

    return place_of


def figures(raw: dict[str, int], *, departments: bool = False) -> dict:
    signups = raw.get("signups", 0)
    out = {
        "active_volunteers": raw.get("active", 0),
        "activities": raw.get("activities", 0),
        "activities_held": raw.get("activities_held", 0),
        "participations": raw.get("participations", 0),
        "service_hours": round(raw.get("service_minutes", 0) / 60, 2),
        "makeup_hours": round(raw.get("makeup_minutes", 0) / 60, 2),
        "scanned_hours": round((raw.get("service_minutes", 0) - raw.get("makeup_minutes", 0)) / 60, 2),
        "points_issued": raw.get("issued", 0),
        "points_deducted": raw.get("deducted", 0),
        "points_redeemed": raw.get("redeemed", 0),
        "points_expired": raw.get("expired", 0),
        "no_show_rate": round(raw.get("no_shows", 0) / signups, 4) if signups else None,
    }
    if departments:
        out.update(
            volunteers=None,
            points_outstanding=None,
            redemptions=None,
            goods_out=None,
            deeds_approved=None,
            deductions_approved=None,
        )
    else:
        out.update(
            volunteers=raw.get("registered", 0),
            points_outstanding=raw.get("net", 0),
            redemptions=raw.get("redemptions", 0),
            goods_out=raw.get("goods", 0),
            deeds_approved=raw.get("deeds", 0),
            deductions_approved=raw.get("deductions", 0),
        )
    return out


def summary(root: Region, first: date, last: date) -> dict:
    return figures(sums(region_place(root), first, last).get(root.id, {}))


def by_region(root: Region, first: date, last: date) -> dict[str, dict]:
    raw = sums(region_place(root, children=True), first, last)
    children = db.session.scalars(sa.select(Region).where(Region.parent_id == root.id))
    return {child.code: figures(raw.get(child.id, {})) for child in children}


def by_department(root: Region, first: date, last: date) -> dict[int, dict]:
    raw = sums(department_place(root), first, last, departments=True)
    tree = subtree_ids(root)
    departments = db.session.scalars(sa.select(Department).where(Department.region_id.in_(tree)))
    return {d.id: figures(raw.get(d.id, {}), departments=True) for d in departments}


def resident_balances(root: Region) -> int:
    """What residents of the subtree hold now, straight from the ledger's cached balances."""
    tree = subtree_ids(root)
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Account.balance), 0))
            .join(User, sa.and_(Account.owner_type == "user", Account.owner_id == User.id))
            .where(Account.kind == "resident", User.region_id.in_(tree))
        )
    )


def by_store(root: Region, first: date, last: date) -> dict[int, dict]:
    tree = subtree_ids(root)
    out = {
        s.id: {"redemptions": 0, "voided": 0, "points_redeemed": 0, "goods_out": 0}
        for s in db.session.scalars(sa.select(Store).where(Store.region_id.in_(tree)))
    }
    for r in db.session.scalars(sa.select(Redemption).where(Redemption.store_id.in_(list(out)))):
        if not first <= _day(r.created_at) <= last:
            continue
        row = out[r.store_id]
        if r.status == "completed":
            row["redemptions"] += 1
            row["points_redeemed"] += r.total_points
            row["goods_out"] += sum(line.qty for line in r.lines)
        else:
            row["voided"] += 1
    return out


# The refresh's derived tables, row by row ------------------------------------------------------

AREA_FLOWS = (
    "activities",
    "activities_held",
    "participations",
    "service_minutes",
    "makeup_minutes",
    "signups",
    "no_shows",
    "issued",
    "deducted",
    "redeemed",
    "expired",
    "redemptions",
    "goods",
    "deeds",
    "deductions",
)


def _bounds(grain: str, period: date) -> tuple[date, date]:
    if grain == "d":
        return period, period
    if grain == "m":
        following = date(period.year + period.month // 12, period.month % 12 + 1, 1)
        return period, following - timedelta(days=1)
    return period, date(period.year, 12, 31)


def area_problems() -> list[str]:
    """Every stored `stats_area` row against the raw rows of its region's subtree and period, and
    every region and day with raw figures has its row."""
    from stats.models import AreaRollup

    problems = []
    regions = {r.id: r for r in db.session.scalars(sa.select(Region))}
    for row in db.session.execute(sa.select(AreaRollup.__table__)).mappings():
        first, last = _bounds(row["grain"], row["period"])
        raw = sums(region_place(regions[row["region_id"]]), first, last).get(row["region_id"], {})
        before = sums(region_place(regions[row["region_id"]]), first, first - timedelta(days=1))
        wanted = {name: raw.get(name, 0) for name in AREA_FLOWS}
        wanted["active"] = raw.get("active", 0)
        wanted["registered"] = raw.get("registered", 0) - before.get(row["region_id"], {}).get("registered", 0)
        stored = {name: row[name] for name in wanted}
        if stored != wanted:
            differing = {k: (stored[k], v) for k, v in wanted.items() if stored[k] != v}
            problems.append(f"{regions[row['region_id']].code} {row['grain']} {row['period']}: {differing}")
    return problems


def ranking(kind: str, root: Region, first: date, last: date) -> list[tuple[int, float, int]]:
    """(id, service hours, points) of every volunteer or household of the subtree who served or
    earned in the period, best first by points (then hours, then id), from the raw rows."""
    tree = subtree_ids(root)
    users = {u.id: u for u in db.session.scalars(sa.select(User))}
    minutes: dict[int, int] = defaultdict(int)
    points: dict[int, int] = defaultdict(int)

    def key(user_id: int) -> int | None:
        user = users[user_id]
        if user.region_id not in tree:
            return None
        return user.id if kind == "volunteers" else user.household_id

    for activity in db.session.scalars(sa.select(Activity).where(Activity.status.in_(LIVE))):
        if first <= _day(activity.starts_at) <= last:
            for a in db.session.scalars(sa.select(Attendance).where(Attendance.activity_id == activity.id)):
                if a.status in PRESENT and key(a.user_id) is not None:
                    minutes[key(a.user_id)] += a.credited_minutes
    for day, user_id, other, t, incoming in _ledger_rows():
        if other.kind == "issuer" and first <= day <= last and key(user_id) is not None:
            points[key(user_id)] += t.amount if incoming else -t.amount
    found = [
        (k, round(minutes[k] / 60, 2), points[k]) for k in set(minutes) | set(points) if minutes[k] > 0 or points[k] > 0
    ]
    return sorted(found, key=lambda r: (-r[2], -r[1], r[0]))
