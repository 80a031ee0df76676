"""The volunteer flow in Chromium: an organizer publishes an activity; a volunteer signs up and
checks in with the QR from the live screen; the kiosk scans a personal code typed by a wedge
scanner; a correction that adds minutes waits for a reviewer (the four-eyes rule), who approves it
on the make-up review page; the volunteer's archive explains the entry."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from PIL import Image

from community import accounts
from community.models import User
from core.db import db, utcnow
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sign_in(page, live, phone):
    page.goto(live.url + "/login")
    page.fill("#phone", phone)
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")


def test_publish_sign_up_check_in_kiosk_correct(live, browser):
    with live.app.app_context():
        f.region("7301", "桃江县", "county")
        f.region("730101", "武潭镇", "township", "7301")
        department = f.department("武潭派出所", "730101")
        f.grant(f.user("730101", name="李组织", phone="13912360001"), "organizer", "department", department.id)
        f.user("730101", name="王志愿", phone="13912360002")
        neighbour = f.user("730101", name="赵邻居", phone="13912360003")
        neighbour_id = neighbour.id
        f.grant(f.user("730101", name="孙审核", phone="13912360004"), "reviewer", "region", "730101")

    organizer = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    volunteer = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    ).new_page()

    # The organizer publishes an activity that started two and a half hours ago.
    sign_in(organizer, live, "13912360001")
    organizer.goto(live.url + "/organizer/activities/new")
    start = (utcnow() - timedelta(minutes=150)).astimezone(SHANGHAI).replace(second=0, microsecond=0)
    organizer.fill("input[name=title]", "武潭河道清理")
    organizer.select_option("select[name=category]", "环境整治")
    organizer.fill("input[name=address]", "武潭河边")
    organizer.fill("input[name=starts_at]", start.strftime("%Y-%m-%dT%H:%M"))
    organizer.fill("input[name=ends_at]", (start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    organizer.check("input[name=allow_walk_in]")
    organizer.get_by_role("button", name="保存草稿").click()
    organizer.get_by_role("button", name="发布").click()
    assert "已发布" in organizer.inner_text("main")
    activity_url = organizer.url
    activity_id = int(activity_url.rstrip("/").split("/")[-1])

    # The volunteer finds it and signs up.
    sign_in(volunteer, live, "13912360002")
    volunteer.goto(f"{live.url}/activities/{activity_id}")
    volunteer.get_by_role("button", name="我要报名").click()
    assert "报名成功" in volunteer.inner_text("main")
    screenshot(volunteer, "activity-signed-up")

    # The live screen shows a QR; the volunteer's phone camera opens the URL it holds.
    organizer.goto(f"{live.url}/organizer/activities/{activity_id}/live")
    organizer.wait_for_function("() => document.getElementById('venue-qr').complete")
    shot = screenshot(organizer, "live-screen")
    [decoded] = zxingcpp.read_barcodes(Image.open(shot))
    assert "/scan?t=" in decoded.text
    volunteer.goto(decoded.text)
    assert "签到成功" in volunteer.inner_text("main")
    screenshot(volunteer, "scan-checked-in")
    organizer.wait_for_function("() => document.getElementById('checked-in').textContent === '1'", timeout=10000)

    # The kiosk scans a neighbour's personal code, typed by a keyboard-wedge scanner.
    with live.app.app_context():
        code, _ = accounts.personal_code(db.session.get(User, neighbour_id), utcnow())
    organizer.goto(f"{live.url}/organizer/activities/{activity_id}/kiosk")
    organizer.locator("#kiosk-scan").type(code + "\n", delay=3)
    organizer.wait_for_selector(".kiosk-result.ok-cue")
    assert "赵邻居 签到成功" in organizer.inner_text("#kiosk-result")
    # The organizer's browser runs in UTC; times on the page are still Shanghai's.
    local = utcnow().astimezone(SHANGHAI)
    log = organizer.inner_text("#kiosk-log")
    assert any(f"{local - timedelta(minutes=m):%H:%M} 赵邻居 签到" in log for m in (0, 1)), log
    screenshot(organizer, "kiosk")

    # The organizer records that the volunteer came at the start and served 2 hours: more than the
    # scans say, so it is a make-up that waits for a reviewer and credits nothing yet.
    organizer.goto(activity_url)
    row = organizer.locator("tr", has_text="王志愿").first
    row.locator("summary").click()
    row.locator("input[name=checked_in_at]").fill(start.strftime("%Y-%m-%dT%H:%M"))
    row.locator("input[name=checked_out_at]").fill((start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    row.locator("input[name=reason]").fill("忘记签退，组织者核实")
    row.get_by_role("button", name="更正").click()
    assert "待审核员审核" in organizer.inner_text("main")
    assert "补录待审核" in organizer.inner_text("main")
    screenshot(organizer, "manage-activity")

    # A reviewer of the township approves it on the make-up review page (a phone).
    reviewer = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    ).new_page()
    sign_in(reviewer, live, "13912360004")
    reviewer.goto(live.url + "/reviewer/makeups")
    assert "王志愿" in reviewer.inner_text("main") and "忘记签退，组织者核实" in reviewer.inner_text("main")
    screenshot(reviewer, "makeup-review")
    reviewer.get_by_role("button", name="通过").click()
    assert "已审核" in reviewer.inner_text("main")

    volunteer.goto(live.url + "/my/archive")
    text = volunteer.inner_text("main")
    assert "20 分 = 2 小时 × 10 分/小时（按 30 分钟取整）" in text and "武潭河道清理" in text
    screenshot(volunteer, "archive-after-correction")
