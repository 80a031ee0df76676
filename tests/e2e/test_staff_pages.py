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


def test_an_objection_and_a_large_adjustment_wait_for_a_second_person_on_their_pages(live, demo, phone_page):
    """A deed on notice with an objection, and an adjustment above the threshold, as the reviewer
    and the admin see them on a phone: nothing posts until someone else decides."""
    import sqlalchemy as sa

    from community.models import Region, User
    from core import clock
    from core.db import db, utcnow
    from points import adjustments, deeds
    from tests import factories as f

    now = utcnow()
    with live.app.app_context():
        staff = {role: db.session.scalar(sa.select(User).where(User.phone == STAFF[role][0])) for role in STAFF}
        grid = db.session.get(Region, staff["grid_worker"].grants[0].scope_id)
        neighbours = [f.user(grid.code, name="张大爷"), f.user(grid.code, name="李阿姨")]
        deed = deeds.record(
            actor=staff["grid_worker"],
            resident_id=neighbours[0].id,
            deed_type="haorenhaoshi",
            description="帮独居老人修好了水管",
            occurred_on=clock.today(),
            now=utcnow(),
        )
        deeds.approve(actor=staff["reviewer"], deed_id=deed.id, now=utcnow())
        deeds.object_to(actor=neighbours[1], deed_id=deed.id, reason="不实，当天此人不在村里", now=utcnow())
        adjustments.request(
            actor=staff["admin"], resident_id=neighbours[0].id, points=100, reason="抗洪抢险表彰", key="e2e", now=now
        )

    sign_in(phone_page, live, "reviewer")
    phone_page.goto(live.url + "/deeds/review")
    text = phone_page.inner_text("main")
    assert "不实，当天此人不在村里" in text and "异议成立" in text
    screenshot(phone_page, "reviewer-objection")
    phone_page.goto(live.url + "/notices")
    assert "有异议，待处理" in phone_page.inner_text("main")
    screenshot(phone_page, "notices-objection")

    phone_page.context.clear_cookies()
    sign_in(phone_page, live, "admin")
    phone_page.goto(live.url + "/admin/adjustments")
    text = phone_page.inner_text("main")
    # The requester may withdraw but not approve his own request.
    assert "抗洪抢险表彰" in text and "撤回" in text and "同意并计入" not in text
    screenshot(phone_page, "admin-adjustments")
