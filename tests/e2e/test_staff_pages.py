"""Staff pages on the demo county, on a phone: they render, in Chinese, with real data."""

from __future__ import annotations

import pytest

from community import demo as community_demo
from community.demo import DEMO_PASSWORD, STAFF
from points import demo as points_demo
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(live):
    with live.app.app_context():
        community_demo.seed(force=True, residents=40)
        points_demo.seed()


def sign_in(page, live, role):
    page.goto(live.url + "/login")
    page.fill("#phone", STAFF[role][0])
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")


@pytest.mark.parametrize(
    ("role", "paths", "expect"),
    [
        ("admin", ["/", "/admin/", "/admin/roles?q=李", "/admin/residents"], ["管理员", "桃江县", "授权", "居民档案"]),
        ("reviewer", ["/deeds/review", "/notices"], ["待审核与公示中", "公示"]),
        ("grid_worker", ["/deeds/new"], ["记录好人好事"]),
    ],
)
def test_staff_pages_render(live, demo, phone_page, role, paths, expect):
    sign_in(phone_page, live, role)
    for path, text in zip(paths, expect, strict=True):
        response = phone_page.goto(live.url + path)
        assert response.status == 200, path
        assert text in phone_page.inner_text("main"), path
        screenshot(phone_page, f"{role}-{path.strip('/').replace('/', '-').split('?')[0] or 'home'}")
