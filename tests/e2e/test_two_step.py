"""On a phone: a county requires two-step verification of its admins; the admin signs in, is sent
to enrol, scans the QR (decoded here: it carries the secret shown beside it), keeps the recovery
codes, finds the enrolment in the audit log, and next time signs in with password and code."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from community import totp
from community.models import RegionSecurity
from core.db import db, utcnow
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e

ADMIN = "13912480001"


@pytest.fixture(scope="module")
def county(live):
    with live.app.app_context():
        region = f.region("7501", "安化县", "county")
        f.region("750101", "东坪镇", "township", "7501")
        f.grant(f.user("750101", name="陈管理", phone=ADMIN), "admin", "region", "7501")
        db.session.add(RegionSecurity(region_id=region.id, admin_totp_required=True, updated_at=utcnow()))
        db.session.commit()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_an_admin_who_must_enrols_then_signs_in_with_the_code(live, county, phone_page):
    import zxingcpp
    from PIL import Image

    page = phone_page
    page.goto(live.url + "/login")
    page.fill("#phone", ADMIN)
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/my/security")
    assert "完成绑定前，其他页面暂不可用" in page.inner_text("main")
    page.goto(live.url + "/admin/users")
    page.wait_for_url(live.url + "/my/security")  # nothing else until enrolled

    page.get_by_role("button", name="开始绑定").click()
    page.wait_for_selector("#totp-secret")
    secret = page.inner_text("#totp-secret").replace(" ", "")
    assert page.evaluate("document.querySelector('img[alt=两步验证二维码]').naturalWidth") > 0
    png = page.request.get(live.url + "/my/security/qr.png").body()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert decoded and decoded[0].text.startswith("otpauth://totp/") and f"secret={secret}" in decoded[0].text
    assert no_sideways_scroll(page)
    screenshot(page, "totp-enrol")

    page.fill("#code", totp.code_at(secret, utcnow()))
    page.get_by_role("button", name="完成绑定").click()
    page.wait_for_selector("#recovery-codes")
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == totp.RECOVERY_CODES and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    screenshot(page, "totp-recovery-codes")

    page.goto(live.url + "/admin/audit?action=user.totp.enrol")
    text = page.inner_text("main")
    assert "启用两步验证" in text and "共 1 条" in text and "陈管理" in text
    assert no_sideways_scroll(page)
    screenshot(page, "admin-audit")

    page.get_by_role("button", name="退出").click()
    page.goto(live.url + "/login")
    page.fill("#phone", ADMIN)
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/login/code")
    # The enrolment used this step's code; the next step's is the one an app shows next.
    page.fill("#code", totp.code_at(secret, utcnow() + timedelta(seconds=totp.INTERVAL)))
    page.get_by_role("button", name="验证并登录").click()
    page.wait_for_url(live.url + "/")
    page.goto(live.url + "/admin/users")
    assert page.url == live.url + "/admin/users"
