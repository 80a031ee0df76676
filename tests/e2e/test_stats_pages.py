"""The statistics dashboard and a printed monthly report on the demo county, in real Chromium:
charts drawn, tables sortable, drill-down to a township, and the report laid out for A4 print."""

from __future__ import annotations

import pytest

from community import demo as community_demo
from core import clock
from core.db import utcnow
from exchange import demo as exchange_demo
from points import demo as points_demo
from stats import refresh, reports
from tests.e2e.conftest import ARTIFACTS, screenshot
from tests.e2e.test_staff_pages import sign_in
from volunteer import demo as volunteer_demo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(live):
    with live.app.app_context():
        community_demo.seed(force=True, residents=60)
        points_demo.seed()
        volunteer_demo.seed()
        exchange_demo.seed()
        refresh.refresh(now=utcnow())
        written = reports.write_month(now=utcnow(), month=clock.today().replace(day=1))
        return {"report": next(r.id for r in written if r.region.level == "county")}


@pytest.fixture
def desk_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = context.new_page()
    yield page
    context.close()


def test_the_dashboard_draws_charts_sorts_tables_and_drills_down(live, demo, desk_page, phone_page):
    page = desk_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live, "admin")
    response = page.goto(live.url + "/stats/")
    assert response.status == 200
    main = page.inner_text("main")
    assert "志愿服务统计" in main and "数据截至" in main and "红榜" in main
    # Chart.js drew on every canvas (a drawn canvas is not blank).
    for canvas in ("chart-trend", "chart-points", "chart-children"):
        assert page.evaluate(f"Chart.getChart(document.getElementById('{canvas}')) !== undefined"), canvas
    # Sorting by 参与人次 puts the largest first.
    table = page.locator("table.sortable").first
    table.locator("th", has_text="参与人次").click()
    values = [v for v in table.locator("tbody tr td:nth-child(6)").all_inner_texts()]
    numbers = [float(v) for v in values if v.strip() not in ("—", "")]
    assert numbers == sorted(numbers, reverse=True)
    screenshot(page, "stats-dashboard")
    # Drill down from the county to its first township.
    first_child = table.locator("tbody tr td:first-child a").first
    name = first_child.inner_text()
    first_child.click()
    page.wait_for_load_state()
    assert name in page.inner_text("h1")
    assert errors == []

    sign_in(phone_page, live, "reviewer")
    assert phone_page.goto(live.url + "/stats/").status == 200
    screenshot(phone_page, "stats-dashboard-phone")


def test_the_monthly_report_prints_on_a4(live, demo, desk_page):
    page = desk_page
    sign_in(page, live, "admin")
    assert page.goto(live.url + "/stats/reports").status == 200
    page.get_by_role("link", name=clock.today().strftime("%Y年%m月")).first.click()
    page.wait_for_load_state()
    assert "通报" in page.inner_text("h1") and "根哈希" in page.inner_text("main")
    screenshot(page, "stats-report")
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") == "none"
    screenshot(page, "stats-report-print")
    ARTIFACTS.mkdir(exist_ok=True)
    page.pdf(path=str(ARTIFACTS / "stats-report.pdf"), format="A4", print_background=True)
    assert (ARTIFACTS / "stats-report.pdf").stat().st_size > 10_000
