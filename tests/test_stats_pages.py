"""The statistics pages without a browser: a bad period keeps what was typed and says why (422),
exports are linked for every table, and a report page shows what the report holds."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core import clock
from core.db import utcnow
from stats import refresh, reports
from stats.schemas import TABLES
from tests.authz import build_world, sign_in_page
from tests.volunteer_helpers import make_activity
from volunteer import attendance, tokens


@pytest.fixture
def w(app):
    w = build_world()
    activity = make_activity(w, start_in=timedelta(hours=-5), hours=4, allow_walk_in=True)
    for at in (activity.starts_at, activity.starts_at + timedelta(hours=2)):
        attendance.scan_venue_code(user=w.users["resident"], token=tokens.rotating(activity, at)[0], now=at)
    refresh.refresh(now=utcnow())
    return w


def test_a_bad_period_is_kept_as_typed_and_explained(client, w):
    sign_in_page(client, w.users["admin"])
    response = client.get("/stats/?from=2026-13-40&to=2026-11-01")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "日期格式应为 YYYY-MM-DD" in page and 'value="2026-13-40"' in page


def test_the_dashboard_links_an_export_of_every_table_that_works(client, w):
    sign_in_page(client, w.users["admin"])
    # A month: short enough for the flags to be read on the page (and exported).
    page = client.get(f"/stats/?from={clock.today().replace(day=1).isoformat()}").get_data(as_text=True)
    assert "志愿服务统计" in page and "参与人次" in page
    links = set(re.findall(r'href="(/api/v1/stats/export\?[^"]+)"', page))
    tables = {re.search(r"table=([a-z-]+)", link).group(1) for link in links}
    assert tables == set(TABLES)
    for link in sorted(links):
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link


def test_the_report_page_shows_the_root_and_the_figures(client, w):
    written = reports.write_month(now=utcnow(), month=clock.today().replace(day=1))
    county = next(r for r in written if r.region_id == w.regions["county"].id)
    sign_in_page(client, w.users["admin"])
    page = client.get(f"/stats/reports/{county.id}").get_data(as_text=True)
    assert county.archive_root in page and "参与 1 人次" in page and "张**" in page
    listing = client.get("/stats/reports").get_data(as_text=True)
    assert f"/stats/reports/{county.id}" in listing
