"""The import page on a phone: check a GBK .csv, read the report, fix the file, apply it."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from community.models import User
from core.db import db
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

ADMIN_PHONE = "13800000001"


@pytest.fixture(scope="module")
def county(live):
    with live.app.app_context():
        f.region("430900", "益阳市", "city")
        f.region("430922", "桃江县", "county", "430900")
        f.region("430922100", "桃花江镇", "township", "430922")
        f.region("430922100001", "花果山村", "village", "430922100")
        f.region("43092210000101", "花果山村第一网格", "grid", "430922100001")
        f.grant(f.user("430922", name="周管理", phone=ADMIN_PHONE), "admin", "region", "430922")


def roll(count: int, bad_row: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "网格编码", "户号"])
    for i in range(count):
        writer.writerow([f"居民{i}", f"1370000{i:04d}", "43092210000101", ""])
    if bad_row:
        writer.writerow(["错号", "1370000", "43092210000101", ""])
        writer.writerow(["无户", "13700009999", "43092210000101", "H404"])
    return out.getvalue().encode("gbk")


def test_an_admin_checks_a_roll_reads_the_errors_then_applies_the_fixed_file(live, county, phone_page):
    page = phone_page
    page.goto(live.url + "/login")
    page.fill("#phone", ADMIN_PHONE)
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")
    page.goto(live.url + "/admin/imports")
    assert "批量导入" in page.inner_text("main")
    page.select_option("select[name=kind]", "residents")

    page.set_input_files("input[name=file]", {"name": "名单.csv", "mimeType": "text/csv", "buffer": roll(2500, True)})
    page.get_by_role("button", name="检查（不写入）").click()
    page.wait_for_selector(".import-report")
    report = page.inner_text(".import-report")
    assert "发现 2 处问题" in report and "2502" in report and "手机号须为 11 位数字" in report
    assert "找不到户号 H404" in report
    assert "完成" in page.inner_text("#import-progress")
    screenshot(page, "import-dry-run-errors")

    page.set_input_files("input[name=file]", {"name": "名单.csv", "mimeType": "text/csv", "buffer": roll(2500, False)})
    page.get_by_role("button", name="检查（不写入）").click()
    page.wait_for_selector(".import-report >> text=检查通过")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="导入").click()
    page.wait_for_selector(".import-report >> text=导入完成")
    assert "新建 2500" in page.inner_text(".import-report")
    screenshot(page, "import-applied")
    with live.app.app_context():
        imported = sa.select(sa.func.count()).select_from(User).where(User.phone.like("1370000%"))
        assert db.session.scalar(imported) == 2500
