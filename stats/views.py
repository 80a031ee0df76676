"""Pages of statistics: the dashboard (summary cards, trend and breakdown charts, sortable tables
with drill-down from city to grid, rankings, flags, exports) and the monthly reports, printable on
A4. The same readers as the API; the charts get their figures as JSON data, drawn by
static/js/stats.js with the vendored Chart.js (no inline script)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template, request, url_for
from flask_login import current_user, login_required
from marshmallow import ValidationError

from community.models import Region
from core import clock
from core.db import db
from core.security import covers
from stats import flags, queries, rankings, refresh, reports, scope
from stats.refresh import month_of
from stats.schemas import TABLES, PeriodQuery

bp = Blueprint("stats", __name__)

RANKINGS = (
    ("volunteers", "志愿者红榜"),
    ("households", "家庭红榜"),
    ("departments", "部门排名"),
    ("regions", "村（社区）排名"),
)


def _period_from_args() -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The page's query, as the API's schema reads it; on a bad value, the defaults and the errors."""
    args = {k: v for k, v in request.args.items() if v != ""}
    try:
        return PeriodQuery().load(args), {}
    except ValidationError as error:
        kept = {k: v for k, v in args.items() if k == "region_code"}
        return PeriodQuery().load(kept), {k: list(v) for k, v in error.messages.items()}


def _trail(region: Region) -> list[Region]:
    """The region's ancestors the caller may open (the breadcrumb back up), and itself."""
    ids = region.ancestor_ids
    found = {r.id: r for r in db.session.scalars(sa.select(Region).where(Region.id.in_(ids)))}
    return [found[i] for i in ids if covers(current_user, scope.READERS, found[i])]


@bp.get("/stats/")
@login_required
def dashboard():
    query, errors = _period_from_args()
    region = scope.region_for(current_user, query.get("region_code"))
    first, last = scope.period(query)
    summary = queries.summary(region, first, last)
    trend_from = max(first, month_of(last - timedelta(days=335)))
    months = queries.monthly(region, trend_from, last)
    children = queries.by_region(region, first, last)
    departments = queries.by_department(region, first, last)
    stores = queries.by_store(region, first, last)
    ranked = {kind: rankings.ranking(kind, region, first, last, limit=10) for kind, _title in RANKINGS}
    period = {"from": first.isoformat(), "to": last.isoformat()}
    # Flags read raw rows: the dashboard shows them for up to a quarter (the API, for up to a year).
    found_flags = flags.flags(region, first, last) if (last - first).days <= 92 else None
    shown = [c for c in children if not c["suppressed"] and (c["service_hours"] or c["participations"])]
    charts = {
        "months": [m["month"] for m in months],
        "participations": [m["participations"] for m in months],
        "hours": [m["service_hours"] for m in months],
        "issued": [m["points_issued"] for m in months],
        "redeemed": [m["points_redeemed"] for m in months],
        "children": [c["name"] for c in shown],
        "child_hours": [c["service_hours"] for c in shown],
        "child_participations": [c["participations"] for c in shown],
    }
    status = 422 if errors else 200
    return (
        render_template(
            "stats/dashboard.html",
            region=region,
            trail=_trail(region),
            first=first,
            last=last,
            typed={k: request.args.get(k, "") for k in ("from", "to")},
            errors=errors,
            summary=summary,
            as_of=refresh.as_of(),
            children=children,
            departments=departments,
            stores=stores,
            store_fields=queries.STORE_FIELDS,
            ranked=ranked,
            rankings_titles=RANKINGS,
            flags=found_flags,
            charts=charts,
            fields=queries.FIELDS,
            export=lambda table, fmt: url_for(
                "api.stats_export_table", table=table, format=fmt, region_code=region.code, **period
            ),
            tables=TABLES,
            period=period,
        ),
        status,
    )


@bp.get("/stats/reports")
@login_required
def report_list():
    select = reports.visible(current_user)
    items = db.session.scalars(select.limit(200)).all()
    return render_template("stats/reports.html", reports=items)


@bp.get("/stats/reports/<int:report_id>")
@login_required
def report_page(report_id: int):
    report = reports.get(current_user, report_id)
    return render_template(
        "stats/report.html",
        report=report,
        fields=queries.FIELDS,
        rankings_titles=RANKINGS,
        period_end=reports.month_end(report.month),
        today=clock.today(),
    )
