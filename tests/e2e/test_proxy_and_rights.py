"""Acting for a resident without a phone, and a resident's rights, in Chromium on a phone: the grid
worker signs an elderly resident up and prints her card (on A6, and the printed QR scans back to
the card); the organizer's kiosk checks her in with it; she sees it in her inbox, downloads her data
as .xlsx, and closes her account."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from community import accounts
from core.db import db, utcnow
from tests import factories as f
from tests.authz import build_world
from tests.e2e.conftest import screenshot
from tests.volunteer_helpers import make_activity

pytestmark = pytest.mark.e2e

A6 = {"width": 397, "height": 559}  # 105 × 148 mm at 96 px per inch


def sign_in(page, live, phone):
    page.goto(live.url + "/login")
    page.fill("#phone", phone)
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")


@pytest.fixture(scope="module")
def world(live):
    with live.app.app_context():
        w = build_world()
        activity = make_activity(w, start_in=timedelta(minutes=-30), hours=3)
        w.extra["activity"] = activity.id
        w.extra["phones"] = {k: u.phone for k, u in w.users.items()}
        w.extra["ids"] = {k: u.id for k, u in w.users.items()}
        db.session.remove()
    return w


def test_a_grid_worker_signs_a_resident_up_and_prints_her_card(live, world, browser, phone_page):
    activity_id, target = world.extra["activity"], world.extra["ids"]["target"]
    sign_in(phone_page, live, world.extra["phones"]["grid_worker"])
    phone_page.goto(f"{live.url}/activities/{activity_id}")
    phone_page.get_by_role("link", name="为没有手机的居民代报名 ›").click()
    phone_page.fill("input[name=q]", "李")
    phone_page.get_by_role("button", name="查找").click()
    assert "李四" in phone_page.inner_text("main")
    phone_page.get_by_role("button", name="为其报名").click()
    assert "已为「李四」代报名：已报名" in phone_page.inner_text("main")
    screenshot(phone_page, "proxy-signup")

    phone_page.get_by_role("link", name="打印会员卡").click()
    phone_page.get_by_role("button", name="发放会员卡").click()
    assert "已为「李四」发放第 1 张会员卡" in phone_page.inner_text("main")
    phone_page.wait_for_function("() => document.querySelector('.card-qr').naturalWidth > 0")
    screenshot(phone_page, "card-page-phone")

    # Printed on A6 card stock: the card is the sheet, and its QR scans back to the card's code.
    printer = browser.new_context(viewport=A6, locale="zh-CN", device_scale_factor=3)
    page = printer.new_page()
    page.context.add_cookies(phone_page.context.cookies())
    page.goto(f"{live.url}/admin/users/{target}/card")
    page.emulate_media(media="print")
    page.wait_for_function("() => document.querySelector('.card-qr').naturalWidth > 0")
    box = page.locator(".resident-card").bounding_box()
    assert abs(box["width"] - A6["width"]) < 2 and abs(box["height"] - A6["height"]) < 2
    assert page.locator(".topbar").is_hidden() and page.locator("section.noprint").is_hidden()
    path = screenshot(page, "card-print-a6")
    [found] = zxingcpp.read_barcodes(Image.open(path))
    with live.app.app_context():
        from community.models import User

        assert found.text == accounts.card_code(db.session.get(User, target))
        db.session.remove()
    pdf = page.pdf(format="A6", print_background=True, prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1  # the whole card on one A6 sheet
    # Or cut from plain A4: the same card at the top, inside a dashed line.
    page.set_viewport_size({"width": 794, "height": 1123})
    page.goto(f"{live.url}/admin/users/{target}/card?paper=a4")
    page.wait_for_function("() => document.querySelector('.card-qr').naturalWidth > 0")
    assert page.locator(".resident-card").evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    screenshot(page, "card-print-a4")
    a4 = page.pdf(format="A4", prefer_css_page_size=True)
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", a4)) == 1
    printer.close()


def test_the_kiosk_checks_her_in_by_card_and_her_inbox_says_so(live, world, browser, phone_page):
    with live.app.app_context():
        from community.models import User

        person = db.session.get(User, world.extra["ids"]["target"])
        card = accounts.card_code(person) or accounts.card_code(
            accounts.issue_card(
                actor=db.session.get(User, world.extra["ids"]["admin"]), user_id=person.id, now=utcnow()
            )
        )
        db.session.remove()
    kiosk = browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN").new_page()
    sign_in(kiosk, live, world.extra["phones"]["organizer"])
    kiosk.goto(f"{live.url}/organizer/activities/{world.extra['activity']}/kiosk")
    kiosk.fill("#kiosk-scan", card)
    kiosk.press("#kiosk-scan", "Enter")
    kiosk.wait_for_selector(".kiosk-result.ok-cue")
    assert "李四 签到成功" in kiosk.inner_text("#kiosk-result")
    screenshot(kiosk, "kiosk-card-check-in")
    kiosk.goto(f"{live.url}/organizer/activities/{world.extra['activity']}")
    assert "代办" in kiosk.inner_text("main") and "（代报名）" in kiosk.inner_text("main")
    kiosk.context.close()

    sign_in(phone_page, live, world.extra["phones"]["target"])
    phone_page.goto(live.url + "/my/inbox")
    text = phone_page.inner_text("main")
    assert "已凭会员卡签到" in text and "代报名" in text
    screenshot(phone_page, "inbox-proxy-notices")


def test_she_downloads_her_data_and_closes_her_account(live, world, phone_page):
    sign_in(phone_page, live, world.extra["phones"]["resident"])
    phone_page.goto(live.url + "/")
    phone_page.get_by_role("link", name="我的数据").click()
    assert "张小明" in phone_page.inner_text("main")
    screenshot(phone_page, "my-data")
    with phone_page.expect_download() as download:
        phone_page.get_by_role("link", name="下载 Excel（.xlsx）").click()
    book = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert book.sheetnames[0] == "个人信息" and "道德档案" in book.sheetnames

    phone_page.get_by_role("link", name="申请注销账号").click()
    phone_page.fill("#password", f.PASSWORD)
    phone_page.get_by_role("button", name="注销账号").click()
    assert "请确认您已了解注销的后果" in phone_page.inner_text("main")
    screenshot(phone_page, "close-account-confirm")
    phone_page.check("input[name=understood]")
    phone_page.fill("#password", f.PASSWORD)
    phone_page.get_by_role("button", name="注销账号").click()
    phone_page.wait_for_url(live.url + "/")
    assert "账号已注销" in phone_page.inner_text("main")
    screenshot(phone_page, "account-closed")
