"""The monthly report (每月通报): on the 1st, for each county and city, what happened last month —
the figures (in all, by child region, by department), the rankings, the integrity flags — and
the archive root published with it, written once and never changed (the database refuses).

`write_month` first brings the rollups up to date and publishes the archive root (a `points`
service), then writes each region's report that does not exist yet: running it again, by hand or
from a second scheduler, writes nothing twice.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from community.models import Region, User
from core import clock
from core.db import db, insert_if_absent, unit_of_work
from core.errors import NotFound
from core.security import authorize
from points import roots
from stats import flags, queries, rankings, refresh
from stats.models import RegionClosure, Report
from stats.scope import READERS, roots_of

LEVELS = ("city", "county")
TOP = 10


def previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_end(month: date) -> date:
    return refresh.next_month(month) - timedelta(days=1)


def contents(region: Region, month: date) -> dict[str, Any]:
    """What a report of `region` for `month` says, from the rollups and the raw rows behind flags."""
    first, last = month, month_end(month)
    summary = queries.summary(region, first, last)
    return {
        "figures": {
            "summary": {k: summary[k] for k in queries.FIELD_NAMES},
            "by_region": queries.by_region(region, first, last),
            "by_department": queries.by_department(region, first, last),
        },
        "rankings": {kind: rankings.ranking(kind, region, first, last, limit=TOP) for kind in rankings.KINDS},
        "flags": flags.flags(region, first, last),
    }


def write_month(*, now: datetime, month: date | None = None) -> list[Report]:
    """Write last month's report (or `month`'s) of every county and city that has none yet."""
    month = month or previous_month(clock.today(now))
    regions = db.session.scalars(sa.select(Region).where(Region.level.in_(LEVELS)).order_by(Region.path)).all()
    missing = [
        r
        for r in regions
        if db.session.scalar(sa.select(Report.id).where(Report.region_id == r.id, Report.month == month)) is None
    ]
    if not missing:
        return []
    refresh.refresh(now=now)
    published = roots.publish(now=now)
    moment = refresh.as_of() or now
    written = []
    for region in missing:
        region = db.session.get(Region, region.id)
        values = {
            "region_id": region.id,
            "month": month,
            **contents(region, month),
            "archive_root": published.root,
            "archive_leaves": published.leaves,
            "archive_mark": published.mark,
            "as_of": moment,
            "created_at": now,
        }
        db.session.rollback()
        with unit_of_work() as session:
            # RETURNING, not the row count: psycopg reports no count for this statement.
            if insert_if_absent(session, Report, values, ("region_id", "month"), returning=True) is not None:
                written.append(region.id)
    return list(db.session.scalars(sa.select(Report).where(Report.region_id.in_(written), Report.month == month)))


def visible(user: User) -> sa.Select:
    """The reports of regions inside the caller's regions, newest month first."""
    authorize(user, READERS)
    ids = [r.id for r in roots_of(user)]
    inside = sa.select(RegionClosure.region_id).where(RegionClosure.ancestor_id.in_(ids))
    return sa.select(Report).where(Report.region_id.in_(inside)).order_by(Report.month.desc(), Report.region_id)


def get(user: User, report_id: int) -> Report:
    authorize(user, READERS)
    report = db.session.get(Report, report_id)
    if report is None:
        raise NotFound("report_not_found")
    authorize(user, READERS, report.region, hide=True)
    return report
