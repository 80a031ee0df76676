"""Adjusting a resident's points from their archive page: a reason is required, a large adjustment
waits for a second admin (four eyes), and nobody adjusts for themselves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.db import db
from points import archive
from points.models import Adjustment
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.factories import fresh


@pytest.fixture
def world(app) -> World:
    return build_world()


def adjust(client, resident_id: int, **form):
    return client.post(f"/admin/residents/{resident_id}/adjustments", data={"csrf_token": csrf_token(client), **form})


def test_a_reason_is_required_and_nothing_moves_without_one(client, world):
    resident = world.users["resident"]
    sign_in_page(client, world.users["admin"])
    page = client.get(f"/admin/residents/{resident.id}").get_data(as_text=True)
    assert "积分调整" in page and 'name="reason" required' in page
    refused = adjust(client, resident.id, points="5", reason="   ", key="k1")
    assert refused.status_code == 302
    assert "请填写调整原因" in client.get(refused.headers["Location"]).get_data(as_text=True)
    for bad in ("0", "abc", "99999"):
        adjust(client, resident.id, points=bad, reason="表彰", key=f"bad-{bad}")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Adjustment)) == 0
    assert archive.totals(db.session, resident.id)["balance"] == 0


def test_a_large_adjustment_waits_for_a_second_admin_and_a_double_submit_is_one(client, world):
    resident, first = world.users["resident"], world.users["admin"]
    second = f.grant(f.user("4301", name="郑管理"), "admin", "region", "4301")
    sign_in_page(client, first)
    for _ in range(2):  # the same form sent twice (a double tap)
        assert adjust(client, resident.id, points="500", reason="抗洪抢险表彰", key="same-form").status_code == 302
    [pending] = db.session.scalars(sa.select(Adjustment)).all()
    assert pending.status == "pending"
    review = client.get("/admin/adjustments").get_data(as_text=True)
    assert "抗洪抢险表彰" in review and "同意并计入" not in review  # not for the one who asked
    client.post(
        "/admin/adjustments",
        data={"csrf_token": csrf_token(client), "action": "approve", "adjustment_id": str(pending.id)},
    )
    fresh()
    assert db.session.get(Adjustment, pending.id).status == "pending"
    assert archive.totals(db.session, resident.id)["balance"] == 0

    other = client.application.test_client()
    sign_in_page(other, second)
    other.post(
        "/admin/adjustments",
        data={"csrf_token": csrf_token(other), "action": "approve", "adjustment_id": str(pending.id)},
    )
    fresh()
    assert db.session.get(Adjustment, pending.id).status == "posted"
    assert archive.totals(db.session, resident.id)["balance"] == 500


def test_an_admin_cannot_adjust_their_own_points_from_the_page(client, world):
    admin = world.users["admin"]
    sign_in_page(client, admin)
    refused = adjust(client, admin.id, points="5", reason="自己加分", key="self")
    assert "不能为本人或本户成员办理此项操作" in client.get(refused.headers["Location"]).get_data(as_text=True)
    assert archive.totals(db.session, admin.id)["balance"] == 0
