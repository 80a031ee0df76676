"""Every statistics table as a file: CSV (UTF-8 with a byte-order mark, so that Excel on a county
office PC reads the Chinese right) or XLSX (openpyxl), with Chinese headers. The same readers as
the API and the pages; a cell that a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Response

from community.models import Region
from stats import flags, queries, rankings
from stats.queries import FIELDS

BOM = "\ufeff"
FORMULA = ("=", "+", "-", "@", "\t", "\r")
FIGURES = [(name, header) for name, header in FIELDS]
SUPPRESSED = ("suppressed", "不足5人已隐去")
RANKED = [("service_hours", "服务时长（小时）"), ("points", "积分")]


@dataclass
class Table:
    title: str
    columns: list[tuple[str, str]]  # (key, Chinese header)
    rows: list[dict[str, Any]]


def _summary(region: Region, first: date, last: date, options: dict) -> Table:
    row = queries.summary(region, first, last)
    columns = [("region_code", "地区编码"), ("region_name", "地区"), ("from", "开始日期"), ("to", "结束日期")]
    return Table("统计概况", [*columns, *FIGURES, ("as_of", "数据截至")], [row])


def _by_region(region: Region, first: date, last: date, options: dict) -> Table:
    columns = [("region_code", "地区编码"), ("name", "地区"), ("level", "层级"), *FIGURES, SUPPRESSED]
    return Table("分地区统计", columns, queries.by_region(region, first, last))


def _by_department(region: Region, first: date, last: date, options: dict) -> Table:
    columns = [("name", "部门"), ("region_code", "地区编码"), *FIGURES, SUPPRESSED]
    return Table("分部门统计", columns, queries.by_department(region, first, last))


def _by_store(region: Region, first: date, last: date, options: dict) -> Table:
    columns = [("name", "超市"), ("region_code", "地区编码"), ("region_name", "地区"), *queries.STORE_FIELDS]
    return Table("道德超市统计", columns, queries.by_store(region, first, last))


def _monthly(region: Region, first: date, last: date, options: dict) -> Table:
    return Table("分月统计", [("month", "月份"), *FIGURES], queries.monthly(region, first, last))


def _ranking(kind: str, title: str, columns: list[tuple[str, str]]) -> Callable[..., Table]:
    def build(region: Region, first: date, last: date, options: dict) -> Table:
        rows = rankings.ranking(kind, region, first, last, **options)
        return Table(title, [("rank", "名次"), *columns, *RANKED], rows)

    return build


def _flags(region: Region, first: date, last: date, options: dict) -> Table:
    rows = [
        {
            "title": flag["title"],
            "subject": flag["subject"].get("name", ""),
            "count": flag["count"],
            "detail": flag["detail"],
            "links": " ".join(link.get("href", "") for link in flag["links"]),
        }
        for flag in flags.flags(region, first, last)
    ]
    columns = [("title", "线索类型"), ("subject", "对象"), ("count", "次数"), ("detail", "说明"), ("links", "相关记录")]
    return Table("异常线索", columns, rows)


PEOPLE = [("people", "人数")]
TABLES: dict[str, Callable[..., Table]] = {
    "summary": _summary,
    "by-region": _by_region,
    "by-department": _by_department,
    "by-store": _by_store,
    "monthly": _monthly,
    "rankings-volunteers": _ranking("volunteers", "志愿者红榜", [("name", "姓名")]),
    "rankings-households": _ranking("households", "家庭红榜", [("name", "户号"), *PEOPLE]),
    "rankings-departments": _ranking("departments", "部门排名", [("name", "部门"), *PEOPLE]),
    "rankings-regions": _ranking("regions", "村（社区）排名", [("code", "地区编码"), ("name", "地区"), *PEOPLE]),
    "flags": _flags,
}


def table(name: str, region: Region, first: date, last: date, options: dict) -> Table:
    return TABLES[name](region, first, last, options)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else ""
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value  # never a formula in someone's spreadsheet
    return value


def csv_bytes(data: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for _key, header in data.columns])
    for row in data.rows:
        writer.writerow([_cell(row.get(key)) for key, _header in data.columns])
    return (BOM + out.getvalue()).encode("utf-8")


def xlsx_bytes(data: Table) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = data.title[:31]
    sheet.append([header for _key, header in data.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in data.rows:
        sheet.append([_cell(row.get(key)) for key, _header in data.columns])
    sheet.freeze_panes = "A2"
    for index, (_key, header) in enumerate(data.columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(10, 2 * len(header) + 2)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def response(data: Table, fmt: str, region: Region, first: date, last: date) -> Response:
    body = csv_bytes(data) if fmt == "csv" else xlsx_bytes(data)
    name = f"{region.name}{data.title}_{first.isoformat()}_{last.isoformat()}.{fmt}"
    ascii_name = f"stats_{region.code}_{first.isoformat()}_{last.isoformat()}.{fmt}"
    result = Response(body, mimetype=TYPES[fmt].split(";")[0], content_type=TYPES[fmt])
    result.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    result.headers["X-Stats-As-Of"] = queries.as_of_text() or ""
    return result
