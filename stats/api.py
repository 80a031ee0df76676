"""JSON routes of statistics (API.md "Statistics"). Thin: load, resolve the scope, read, dump.

Every response that comes from rollups says how fresh it is: `as_of` in the body, and the
`X-Stats-As-Of` header where the body is a bare list (rankings)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from core.api import Routes, paginate
from core.db import db
from stats import export, flags, queries, rankings, reports, scope
from stats.models import Report
from stats.schemas import (
    DepartmentTableSchema,
    ExportQuery,
    FlagQuery,
    FlagTableSchema,
    MonthTableSchema,
    PeriodQuery,
    RankingQuery,
    RankingRowSchema,
    RegionTableSchema,
    ReportQuery,
    ReportSchema,
    StoreTableSchema,
    SummarySchema,
    TableQuery,
)

api = Routes()
ERRORS = (404,)


def _table(user, query: dict[str, Any], rows_of) -> dict[str, Any]:
    region = scope.region_for(user, query.get("region_code"))
    first, last = scope.period(query)
    rows = rows_of(region, first, last)
    page, per_page = query.get("page", 1), query.get("per_page", 100)
    return {
        **queries.summary_context(region, first, last),
        "items": rows[(page - 1) * per_page : page * per_page],
        "page": page,
        "per_page": per_page,
        "total": len(rows),
    }


@api.route("/stats/summary", query=PeriodQuery, response=SummarySchema, errors=ERRORS, tag="stats")
def summary(user, query):
    """Figures of a region subtree for a period (default: this year), from the rollups."""
    region = scope.region_for(user, query.get("region_code"))
    first, last = scope.period(query)
    return queries.summary(region, first, last)


@api.route("/stats/by-region", query=TableQuery, response=RegionTableSchema, errors=ERRORS, tag="stats")
def by_region(user, query):
    """One row per child region; groups under 5 people show no figures about people."""
    return _table(user, query, queries.by_region)


@api.route("/stats/by-department", query=TableQuery, response=DepartmentTableSchema, errors=ERRORS, tag="stats")
def by_department(user, query):
    """One row per department located in the region subtree."""
    return _table(user, query, queries.by_department)


@api.route("/stats/by-store", query=TableQuery, response=StoreTableSchema, errors=ERRORS, tag="stats")
def by_store(user, query):
    """One row per moral supermarket in the region subtree: baskets, voids, points and goods."""
    return _table(user, query, queries.by_store)


@api.route("/stats/monthly", query=TableQuery, response=MonthTableSchema, errors=ERRORS, tag="stats")
def monthly(user, query):
    """One row per month (`YYYY-MM`) of the period."""
    return _table(user, query, queries.monthly)


@api.route("/stats/flags", query=FlagQuery, response=FlagTableSchema, errors=ERRORS, tag="stats")
def integrity_flags(user, query):
    """The integrity flags (刷分 signs) of the period, each with links to the records behind it."""
    region = scope.region_for(user, query.get("region_code"))
    first, last = scope.period(query)
    page, per_page = query.get("page", 1), query.get("per_page", 100)
    items, total = flags.page(region, first, last, page, per_page)
    return {
        **queries.summary_context(region, first, last),
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
    }


def _ranking(kind: str):
    def view(user, query):
        region = scope.region_for(user, query.get("region_code"))
        first, last = scope.period(query)
        options = {"limit": query["limit"], "order": query["order"], "level": query.get("level")}
        response = jsonify(rankings.ranking(kind, region, first, last, **options))
        response.headers["X-Stats-As-Of"] = queries.as_of_text() or ""
        return response

    view.__name__ = f"ranking_{kind}"
    view.__doc__ = f"The {kind} ranking (红榜) of the period: names masked without consent; groups under 5 withheld."
    return api.route(
        f"/stats/rankings/{kind}", query=RankingQuery, response=RankingRowSchema, many=True, errors=ERRORS, tag="stats"
    )(view)


for _kind in rankings.KINDS:
    _ranking(_kind)


@api.route(
    "/stats/export",
    query=ExportQuery,
    content_type=("text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    errors=ERRORS,
    tag="stats",
)
def export_table(user, query):
    """Any statistics table as a file: `?table=summary|by-region|...&format=csv|xlsx` (CSV is UTF-8
    with a byte-order mark; both have Chinese headers)."""
    region = scope.region_for(user, query.get("region_code"))
    first, last = scope.period(query)
    options = {"limit": query["limit"], "order": query["order"], "level": query.get("level")}
    table = export.table(query["table"], region, first, last, options)
    return export.response(table, query["format"], region, first, last)


@api.route("/reports", query=ReportQuery, response=ReportSchema, paged=True, errors=(404,), tag="stats")
def list_reports(user, query):
    """The monthly reports (每月通报) of the caller's regions, newest month first; `?region_code=`."""
    select = reports.visible(user)
    if query.get("region_code"):
        region = scope.region_for(user, query["region_code"])
        select = select.where(Report.region_id == region.id)
    return paginate(select, query, db.session)


@api.route("/reports/<int:report_id>", response=ReportSchema, errors=ERRORS, tag="stats")
def get_report(user, report_id):
    """One monthly report, as it was written (never changed afterwards)."""
    return reports.get(user, report_id)
