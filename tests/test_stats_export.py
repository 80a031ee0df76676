"""Every statistics table exports as CSV (UTF-8 with a byte-order mark) and XLSX, with Chinese
headers and the same figures as the API."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from core.db import utcnow
from stats import refresh
from stats.export import TABLES
from stats.queries import FIELDS
from tests import factories as f
from tests.authz import build_world
from tests.volunteer_helpers import make_activity
from volunteer import attendance, tokens


@pytest.fixture
def w(app):
    w = build_world()
    activity = make_activity(w, start_in=timedelta(hours=-5), hours=4, allow_walk_in=True)
    w.extra["formula"] = f.user("4301010101", name="=HYPERLINK()", consent_public_name=True)
    for who in (w.users["resident"], w.users["target"], w.extra["formula"]):
        for at in (activity.starts_at, activity.starts_at + timedelta(hours=2)):
            attendance.scan_venue_code(user=who, token=tokens.rotating(activity, at)[0], now=at)
    refresh.refresh(now=utcnow())
    return w


def export(client, w, table: str, fmt: str, **params):
    response = client.get(
        "/api/v1/stats/export",
        query_string={"table": table, "format": fmt, **params},
        headers=f.bearer(w.users["admin"]),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "attachment" in response.headers["Content-Disposition"]
    return response


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_exports_as_csv_with_a_bom_and_chinese_headers(client, w, table):
    response = export(client, w, table, "csv")
    assert response.mimetype == "text/csv"
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    header = rows[0]
    assert header and all(any("\u4e00" <= ch <= "\u9fff" for ch in cell) for cell in header), header
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]


def test_the_xlsx_opens_and_holds_what_the_api_says(client, w):
    response = export(client, w, "by-region", "xlsx")
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    assert sheet.title == "分地区统计"
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["地区编码", "地区", "层级"] and header[3 : 3 + len(FIELDS)] == [h for _n, h in FIELDS]
    api = client.get("/api/v1/stats/by-region", headers=f.bearer(w.users["admin"])).get_json()["items"]
    by_code = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(by_code) == {row["region_code"] for row in api}
    for row in api:
        exported = dict(zip(header, by_code[row["region_code"]], strict=True))
        assert exported["参与人次"] == (row["participations"] if row["participations"] is not None else None)
        assert exported["服务时长（小时）"] == row["service_hours"]


def test_a_name_that_looks_like_a_formula_is_exported_as_text(client, w):
    rows = list(csv.reader(io.StringIO(export(client, w, "rankings-volunteers", "csv").get_data().decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:] if "HYPERLINK" in r[1]] == ["'=HYPERLINK()"]
    sheet = load_workbook(io.BytesIO(export(client, w, "rankings-volunteers", "xlsx").get_data())).active
    assert "'=HYPERLINK()" in [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)]


def test_an_unknown_table_or_format_is_a_422(client, w):
    for params in ({"table": "secrets"}, {"table": "summary", "format": "pdf"}, {}):
        response = client.get("/api/v1/stats/export", query_string=params, headers=f.bearer(w.users["admin"]))
        assert response.status_code == 422, params
