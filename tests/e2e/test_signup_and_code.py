"""A resident signs up on a phone, signs in again, and shows a personal code that scans."""

from __future__ import annotations

import pytest
import zxingcpp
from PIL import Image

from community import accounts
from core.db import utcnow
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def county(live):
    with live.app.app_context():
        f.region("4301", "桃江县", "county")
        f.region("430101", "桃花江镇", "township", "4301")
        f.region("43010101", "花果山村", "village", "430101")
        f.region("4301010101", "花果山村第一网格", "grid", "43010101")


def test_sign_up_sign_in_and_scan_my_code(live, county, phone_page):
    page = phone_page
    page.goto(live.url + "/")
    screenshot(page, "home-anonymous")
    page.get_by_role("link", name="注册成为志愿者").click()

    page.fill("#name", "张小明")
    page.fill("#phone", "13912340001")
    page.fill("#password", "short")
    page.select_option("#region_code", "4301010101")
    page.check("input[name=agree]")
    page.get_by_role("button", name="注册").click()
    assert "密码至少 8 位" in page.content()  # a friendly field error, the form kept
    assert page.input_value("#name") == "张小明"
    screenshot(page, "signup-error")

    page.fill("#password", "Abcd1234")
    page.get_by_role("button", name="注册").click()
    page.wait_for_url(live.url + "/")
    assert "注册成功" in page.content() and "张小明" in page.content()
    screenshot(page, "home-resident")

    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/login")
    page.fill("#phone", "13912340001")
    page.fill("#password", "Abcd1234")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")

    page.get_by_role("link", name="我的码").click()
    page.wait_for_selector("#code-img")
    page.wait_for_function("() => document.getElementById('code-img').complete")
    shot = screenshot(page, "my-code")

    decoded = zxingcpp.read_barcodes(Image.open(shot))
    assert len(decoded) == 1, "the page shows exactly one readable QR code"
    with live.app.app_context():
        user = accounts.resolve_personal_code(decoded[0].text, utcnow())
        assert user.name == "张小明" and user.phone == "13912340001"


def test_a_wrong_password_shows_a_message_not_an_error_page(live, county, phone_page):
    page = phone_page
    page.goto(live.url + "/login")
    page.fill("#phone", "13912349999")
    page.fill("#password", "Wrong1234")
    page.get_by_role("button", name="登录").click()
    assert "手机号或密码不正确" in page.content()
    screenshot(page, "login-error")
