"""Integrity flags (刷分 signs, DESIGN §5) for a region subtree and a period, each with the records
behind it, so that a reviewer can look at exactly what raised it:

- `makeups`: an organizer who recorded many make-ups (minutes added by hand);
- `auto_closed`: an activity where many check-outs were closed by the job, not scanned;
- `days_at_cap`: a resident credited the whole daily cap on many days;
- `burst`: one operator checking many people in within a few minutes (kiosk or by hand);
- `concentrated`: a department whose points went mostly to a few residents;
- `same_residents`: one clerk redeeming again and again for the same resident;
- `proxy_checkins`: a staff member who both signed residents up on their behalf and checked them in
  by their printed card (代办), many times.

Flags count per calendar month over the whole tree: the refresh computes each month it touched
(`compute`, from the raw rows by indexed ranges and the rollups) into `stats_flag`, with the regions
of the records behind each flag; a period's flags are those of the months it touches whose records
lie in the subtree asked for (`flags`). Thresholds come from `STATS_FLAGS` (config), defaults below.
Residents are shown masked (flags go into the printed monthly report), staff by name (they acted in
their role).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from community import pii
from community.models import Department, Region, User
from core import clock
from core.db import db
from exchange.models import Redemption, Store
from stats.models import FlagRegion, FlagRow, PersonRollup, RegionClosure
from stats.queries import within
from volunteer.models import Activity, Attendance, Signup

DEFAULTS = {
    "makeups": 5,  # make-ups recorded by one organizer in the period
    "auto_closed": 3,  # auto-closed check-outs at one activity
    "cap_minutes": 480,  # a day at the cap: this many credited minutes
    "days_at_cap": 3,  # days at the cap for one resident
    "burst_count": 20,  # check-ins by one operator ...
    "burst_minutes": 10,  # ... within this many minutes
    "concentrated_share": 0.5,  # the top residents of a department got at least this share ...
    "concentrated_top": 3,  # ... (this many of them) ...
    "concentrated_minimum": 200,  # ... of at least this many points issued by it
    "same_resident": 4,  # redemptions by one clerk for one resident
    "proxy_checkins": 10,  # residents one staff member signed up by proxy and checked in by card
}
TITLES = {
    "makeups": "补录集中",
    "auto_closed": "大量系统自动签退",
    "days_at_cap": "多日达到每日上限",
    "burst": "短时间内大量签到",
    "concentrated": "积分集中于少数人",
    "same_residents": "店员反复为同一居民兑换",
    "proxy_checkins": "代办报名并代为刷卡签到",
}
LINKS_MAX = 50


def threshold(name: str) -> Any:
    return {**DEFAULTS, **current_app.config.get("STATS_FLAGS", {})}[name]


@dataclass
class Flag:
    kind: str
    subject: dict[str, Any]
    count: int
    detail: str
    links: list[dict[str, Any]] = field(default_factory=list)
    regions: set[int] = field(default_factory=set)  # where the records behind it are

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "subject": self.subject,
            "count": self.count,
            "detail": self.detail,
            "links": self.links[:LINKS_MAX],
        }


def _subtree(column: Any, root: Region | None) -> Any:
    if root is None:
        return sa.true()
    return column.in_(sa.select(RegionClosure.region_id).where(RegionClosure.ancestor_id == root.id))


def _activities(root: Region | None, first: date, last: date) -> Any:
    start, end = clock.period_range(first, last)
    return sa.and_(Activity.starts_at >= start, Activity.starts_at < end, _subtree(Activity.region_id, root))


def attendance_link(activity_id: int, user_id: int, attendance_id: int) -> dict[str, Any]:
    return {
        "type": "attendance",
        "id": attendance_id,
        "activity_id": activity_id,
        "user_id": user_id,
        "href": f"/admin/residents/{user_id}",
    }


def resident_link(user_id: int) -> dict[str, Any]:
    return {"type": "resident", "id": user_id, "href": f"/admin/residents/{user_id}"}


def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


def makeups(root: Region | None, first: date, last: date) -> list[Flag]:
    rows = db.session.execute(
        sa.select(
            Attendance.recorded_by_id, Attendance.id, Attendance.activity_id, Attendance.user_id, Activity.region_id
        )
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(_activities(root, first, last), Attendance.review.is_not(None), Attendance.recorded_by_id.is_not(None))
        .order_by(Attendance.id)
    ).all()
    by: dict[int, list] = defaultdict(list)
    where: dict[int, set[int]] = defaultdict(set)
    for organizer_id, attendance_id, activity_id, user_id, region_id in rows:
        by[organizer_id].append(attendance_link(activity_id, user_id, attendance_id))
        where[organizer_id].add(region_id)
    names = _names(set(by))
    return [
        Flag(
            "makeups",
            {"type": "user", "id": organizer_id, "name": names.get(organizer_id, "")},
            len(links),
            f"{names.get(organizer_id, '')} 在本月补录 {len(links)} 次",
            links,
            where[organizer_id],
        )
        for organizer_id, links in by.items()
        if len(links) >= threshold("makeups")
    ]


def auto_closed(root: Region | None, first: date, last: date) -> list[Flag]:
    rows = db.session.execute(
        sa.select(Activity.id, Activity.title, Attendance.id, Attendance.user_id, Activity.region_id)
        .join(Attendance, Attendance.activity_id == Activity.id)
        .where(_activities(root, first, last), Attendance.method_out == "auto")
        .order_by(Attendance.id)
    ).all()
    by: dict[tuple[int, str], list] = defaultdict(list)
    where: dict[int, int] = {}
    for activity_id, title, attendance_id, user_id, region_id in rows:
        by[(activity_id, title)].append(attendance_link(activity_id, user_id, attendance_id))
        where[activity_id] = region_id
    return [
        Flag(
            "auto_closed",
            {"type": "activity", "id": activity_id, "name": title, "href": f"/activities/{activity_id}"},
            len(links),
            f"活动「{title}」有 {len(links)} 人未扫码签退，由系统自动签退",
            links,
            {where[activity_id]},
        )
        for (activity_id, title), links in by.items()
        if len(links) >= threshold("auto_closed")
    ]


def days_at_cap(root: Region | None, first: date, last: date) -> list[Flag]:
    daily = (
        sa.select(
            PersonRollup.user_id,
            PersonRollup.period,
            sa.func.max(PersonRollup.region_id),
            sa.func.sum(PersonRollup.service_minutes).label("minutes"),
        )
        .where(PersonRollup.grain == "d", PersonRollup.period >= first, PersonRollup.period <= last)
        .group_by(PersonRollup.user_id, PersonRollup.period)
        .having(sa.func.sum(PersonRollup.service_minutes) >= threshold("cap_minutes"))
    )
    if root is not None:
        closure = aliased(RegionClosure)
        daily = daily.join(
            closure, sa.and_(closure.region_id == PersonRollup.region_id, closure.ancestor_id == root.id)
        )
    days: dict[int, list[date]] = defaultdict(list)
    where: dict[int, set[int]] = defaultdict(set)
    for user_id, day, region_id, _minutes in db.session.execute(daily):
        days[user_id].append(day if isinstance(day, date) else date.fromisoformat(str(day)))
        where[user_id].add(region_id)
    flagged = {u: sorted(d) for u, d in days.items() if len(d) >= threshold("days_at_cap")}
    names = _names(set(flagged))
    flags = []
    for user_id, dates in flagged.items():
        start, end = clock.period_range(dates[0], dates[-1])
        rows = db.session.execute(
            sa.select(Attendance.id, Attendance.activity_id, Activity.starts_at)
            .join(Activity, Activity.id == Attendance.activity_id)
            .where(Attendance.user_id == user_id, Activity.starts_at >= start, Activity.starts_at < end)
            .order_by(Attendance.id)
        ).all()
        links = [attendance_link(a, user_id, i) for i, a, at in rows if clock.today(at) in dates]
        name = pii.mask_name(names.get(user_id, ""))
        flags.append(
            Flag(
                "days_at_cap",
                {"type": "resident", "id": user_id, "name": name, "href": f"/admin/residents/{user_id}"},
                len(dates),
                f"居民 {name} 有 {len(dates)} 天服务时长达到每日上限",
                links,
                where[user_id],
            )
        )
    return flags


def burst(root: Region | None, first: date, last: date) -> list[Flag]:
    rows = db.session.execute(
        sa.select(
            Attendance.operator_id,
            Attendance.checked_in_at,
            Attendance.id,
            Attendance.activity_id,
            Attendance.user_id,
            Activity.region_id,
        )
        .join(Activity, Activity.id == Attendance.activity_id)
        .where(
            _activities(root, first, last),
            Attendance.operator_id.is_not(None),
            Attendance.method_in.in_(("kiosk", "manual")),
        )
        .order_by(Attendance.operator_id, Attendance.checked_in_at, Attendance.id)
    ).all()
    window, count = timedelta(minutes=threshold("burst_minutes")), threshold("burst_count")
    by: dict[int, list] = defaultdict(list)
    for row in rows:
        by[row[0]].append(row)
    flags = []
    names = _names(set(by))
    for operator_id, scans in by.items():
        best: list = []
        start = 0
        for end in range(len(scans)):
            while scans[end][1] - scans[start][1] > window:
                start += 1
            if end - start + 1 > len(best):
                best = scans[start : end + 1]
        if len(best) >= count:
            name = names.get(operator_id, "")
            when = clock.local(best[0][1]).strftime("%Y-%m-%d %H:%M")
            flags.append(
                Flag(
                    "burst",
                    {"type": "user", "id": operator_id, "name": name},
                    len(best),
                    f"{name} 于 {when} 起 {threshold('burst_minutes')} 分钟内签到 {len(best)} 人",
                    [attendance_link(r[3], r[4], r[2]) for r in best],
                    {r[5] for r in best},
                )
            )
    return flags


def concentrated(root: Region | None, first: date, last: date) -> list[Flag]:
    select = (
        sa.select(PersonRollup.department_id, PersonRollup.user_id, sa.func.sum(PersonRollup.points).label("points"))
        .join(Department, Department.id == PersonRollup.department_id)
        .where(within(PersonRollup, first, last))
        .group_by(PersonRollup.department_id, PersonRollup.user_id)
    )
    if root is not None:
        closure = aliased(RegionClosure)
        select = select.join(
            closure, sa.and_(closure.region_id == Department.region_id, closure.ancestor_id == root.id)
        )
    rows = db.session.execute(select).all()
    by: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for department_id, user_id, points in rows:
        if points > 0:
            by[department_id].append((int(points), user_id))
    top, share, minimum = (
        threshold("concentrated_top"),
        threshold("concentrated_share"),
        threshold("concentrated_minimum"),
    )
    found = db.session.execute(
        sa.select(Department.id, Department.name, Department.region_id).where(Department.id.in_(set(by)))
    ).all()
    names = {d: name for d, name, _r in found}
    homes = {d: region_id for d, _n, region_id in found}
    flags = []
    for department_id, received in by.items():
        total = sum(p for p, _ in received)
        leaders = sorted(received, reverse=True)[:top]
        taken = sum(p for p, _ in leaders)
        # Only where more people than the top received points: otherwise there is nobody to favour.
        if total >= minimum and len(received) > top and taken >= share * total:
            flags.append(
                Flag(
                    "concentrated",
                    {"type": "department", "id": department_id, "name": names.get(department_id, "")},
                    len(leaders),
                    f"{names.get(department_id, '')} 发放的 {total} 分中，前 {len(leaders)} 名居民获得 {taken} 分"
                    f"（{round(100 * taken / total)}%）",
                    [resident_link(user_id) for _p, user_id in leaders],
                    {homes[department_id]},
                )
            )
    return flags


def same_residents(root: Region | None, first: date, last: date) -> list[Flag]:
    start, end = clock.period_range(first, last)
    rows = db.session.execute(
        sa.select(Redemption.clerk_id, Redemption.resident_id, Redemption.id, Redemption.store_id, Store.region_id)
        .join(Store, Store.id == Redemption.store_id)
        .where(Redemption.created_at >= start, Redemption.created_at < end, _subtree(Store.region_id, root))
        .order_by(Redemption.id)
    ).all()
    by: dict[tuple[int, int], list] = defaultdict(list)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for clerk_id, resident_id, redemption_id, store_id, region_id in rows:
        href = f"/stores/{store_id}/receipts/{redemption_id}"
        by[(clerk_id, resident_id)].append({"type": "redemption", "id": redemption_id, "href": href})
        where[(clerk_id, resident_id)].add(region_id)
    flagged = {k: v for k, v in by.items() if len(v) >= threshold("same_resident")}
    names = _names({c for c, _ in flagged} | {r for _, r in flagged})
    return [
        Flag(
            "same_residents",
            {"type": "user", "id": clerk_id, "name": names.get(clerk_id, "")},
            len(links),
            f"店员 {names.get(clerk_id, '')} 为居民 {pii.mask_name(names.get(resident_id, ''))} 兑换 {len(links)} 次",
            [resident_link(resident_id), *links],
            where[(clerk_id, resident_id)],
        )
        for (clerk_id, resident_id), links in flagged.items()
    ]


def proxy_checkins(root: Region | None, first: date, last: date) -> list[Flag]:
    """A staff member who signed residents up on their behalf and then checked them in by card."""
    rows = db.session.execute(
        sa.select(Attendance.operator_id, Attendance.id, Attendance.activity_id, Attendance.user_id, Activity.region_id)
        .join(Activity, Activity.id == Attendance.activity_id)
        .join(Signup, sa.and_(Signup.activity_id == Attendance.activity_id, Signup.user_id == Attendance.user_id))
        .where(
            _activities(root, first, last),
            Attendance.operator_id.is_not(None),
            Attendance.proxy_by_id == Attendance.operator_id,
            Signup.proxy_by_id == Attendance.operator_id,
        )
        .order_by(Attendance.id)
    ).all()
    by: dict[int, list] = defaultdict(list)
    where: dict[int, set[int]] = defaultdict(set)
    for operator_id, attendance_id, activity_id, user_id, region_id in rows:
        by[operator_id].append(attendance_link(activity_id, user_id, attendance_id))
        where[operator_id].add(region_id)
    names = _names(set(by))
    return [
        Flag(
            "proxy_checkins",
            {"type": "user", "id": operator_id, "name": names.get(operator_id, "")},
            len(links),
            f"{names.get(operator_id, '')} 本月代 {len(links)} 人次报名并刷卡签到",
            links,
            where[operator_id],
        )
        for operator_id, links in by.items()
        if len(links) >= threshold("proxy_checkins")
    ]


CHECKS = (makeups, auto_closed, days_at_cap, burst, concentrated, same_residents, proxy_checkins)
KINDS = tuple(check.__name__ for check in CHECKS)


def compute(first: date, last: date) -> list[Flag]:
    """Every flag of [first, last] over the whole tree, the strongest of each kind first."""
    found: list[Flag] = []
    for check in CHECKS:
        found += sorted(check(None, first, last), key=lambda f: (-f.count, f.subject.get("id", 0)))
    return found


def _found(root: Region, first: date, last: date) -> sa.Select:
    """The flags of the months [first, last] touches whose records lie in the subtree (as of the
    last refresh), kind by kind, the latest month first, the strongest first."""
    closure = aliased(RegionClosure)
    inside = (
        sa.select(FlagRegion.flag_id)
        .join(closure, sa.and_(closure.region_id == FlagRegion.region_id, closure.ancestor_id == root.id))
        .where(FlagRegion.flag_id == FlagRow.id)
    )
    order = sa.case({kind: n for n, kind in enumerate(KINDS)}, value=FlagRow.kind, else_=len(KINDS))
    return (
        sa.select(FlagRow.payload)
        .where(FlagRow.month >= first.replace(day=1), FlagRow.month <= last, sa.exists(inside))
        .order_by(order, FlagRow.month.desc(), FlagRow.position)
    )


def flags(root: Region, first: date, last: date) -> list[dict[str, Any]]:
    """Every flag of the subtree and period (see `_found`)."""
    return list(db.session.scalars(_found(root, first, last)))


def page(root: Region, first: date, last: date, number: int, size: int) -> tuple[list[dict[str, Any]], int]:
    """One page of `flags` and how many there are in all: a city's year holds thousands."""
    select = _found(root, first, last)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(select.order_by(None).subquery()))
    return list(db.session.scalars(select.limit(size).offset((number - 1) * size))), int(total or 0)
