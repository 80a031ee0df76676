"""A resident reads their archive on a phone and prints a certificate whose QR opens the public check."""

from __future__ import annotations

from datetime import timedelta

import pytest
import zxingcpp
from PIL import Image

from core.db import utcnow
from points import awards
from points.rules import Rule, credit
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


def test_archive_and_certificate(live, phone_page):
    with live.app.app_context():
        f.region("5301", "桃江县", "county")
        f.region("530101", "桃花江镇", "township", "5301")
        department = f.department("城关派出所", "530101")
        resident = f.user("530101", name="王秀英", phone="13912340077")
        start = utcnow().replace(microsecond=0) - timedelta(days=3)
        for n, hours in enumerate((1.5, 2, 3)):
            c = credit(
                start + timedelta(days=n),
                start + timedelta(days=n, hours=hours),
                start + timedelta(days=n),
                start + timedelta(days=n, hours=3),
                Rule(),
            )
            awards.credit_service(
                user_id=resident.id,
                department_id=department.id,
                credit=c,
                key=f"e2e:{n}",
                now=utcnow(),
                activity={
                    "title": ["河道清理", "夜间巡逻", "反诈宣传"][n],
                    "organizer": department.name,
                    "place": "桃花江镇",
                },
            )

    page = phone_page
    page.goto(live.url + "/login")
    page.fill("#phone", "13912340077")
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")
    page.get_by_role("link", name="我的档案").click()
    page.wait_for_url("**/my/archive")
    text = page.inner_text("main")
    assert "65" in text and "6.5" in text  # 15 + 20 + 30 points; 1.5 + 2 + 3 hours
    assert "15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）" in text
    screenshot(page, "archive")

    page.goto(live.url + "/my/certificates")
    page.get_by_role("button", name="生成证明").click()
    page.wait_for_url("**/my/certificates/*")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    assert "累计服务时长 6.5 小时" in page.inner_text("main")
    shot = screenshot(page, "certificate")
    [decoded] = zxingcpp.read_barcodes(Image.open(shot))
    assert "/certificates/" in decoded.text
    page.goto(decoded.text)
    assert "证明有效" in page.inner_text("main") and "王**" in page.inner_text("main")
    assert "王秀英" not in page.inner_text("main")
    screenshot(page, "certificate-check")
