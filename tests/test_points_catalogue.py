"""The deed catalogue: a fresh installation holds it, and an admin adds, renames, re-prices or
retires types for their region, without changing deeds already recorded or other regions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import Invalid
from points import deeds
from points.models import Deed, DeedType
from tests import factories as f
from tests.authz import World, build_world
from tests.factories import fresh


@pytest.fixture
def world(app) -> World:
    return build_world()


def catalogue(client, region_code: str | None = None, **extra) -> dict[str, dict]:
    query = {"per_page": 100, **({"region_code": region_code} if region_code else {}), **extra}
    body = client.get("/api/v1/deed-types", query_string=query).get_json()
    return {t["code"]: t for t in body["items"]}


def record(w: World, deed_type: str) -> Deed:
    return deeds.record(
        actor=w.users["grid_worker"],
        resident_id=w.users["resident"].id,
        deed_type=deed_type,
        description="帮邻居收稻谷",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )


def test_a_fresh_installation_holds_the_default_catalogue_from_its_migrations(client, world):
    types = catalogue(client)
    assert {"jianyiyongwei", "haorenhaoshi", "luanrenglaji", "weiguiranfang"} <= set(types)
    assert types["jianyiyongwei"]["points"] == 50 and types["luanrenglaji"]["points"] == -5
    assert all(t["region_code"] is None and t["active"] for t in types.values())


def test_an_admin_adds_a_type_that_applies_in_their_subtree_only(client, world):
    admin = world.users["admin"]  # of the county 4301
    response = client.post(
        "/api/v1/deed-types",
        json={"code": "zhuxue", "name": "助学捐款", "points": 8},  # region: the one the admin administers
        headers=f.bearer(admin),
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {
        "code": "zhuxue",
        "name": "助学捐款",
        "points": 8,
        "region_code": "4301",
        "active": True,
    }
    assert catalogue(client, "4301010101")["zhuxue"]["points"] == 8  # a grid of the county
    assert "zhuxue" not in catalogue(client, "4300")  # the city above it
    assert "zhuxue" not in catalogue(client)  # the shared catalogue
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "deed_type.create"))
    assert entry.actor_id == admin.id and entry.after["points"] == 8


def test_repricing_an_inherited_type_shadows_it_for_the_subtree_and_keeps_recorded_deeds(client, world):
    before = record(world, "haorenhaoshi")
    assert before.points == 10
    response = client.patch(
        "/api/v1/deed-types/haorenhaoshi",
        json={"points": 15, "name": "好人好事（镇级）", "region_code": "430101"},
        headers=f.bearer(world.users["admin"]),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["region_code"] == "430101"
    # The township and what lies below it get the new price; the sibling township keeps the old.
    assert catalogue(client, "4301010101")["haorenhaoshi"]["points"] == 15
    assert catalogue(client, "430102")["haorenhaoshi"]["points"] == 10
    assert catalogue(client)["haorenhaoshi"]["points"] == 10  # the shipped row is untouched
    after = record(world, "haorenhaoshi")
    assert after.points == 15
    fresh()
    assert db.session.get(Deed, before.id).points == 10  # recorded before: keeps its points


def test_a_deed_keeps_its_points_through_approval_and_posting_after_a_reprice(client, world):
    from datetime import timedelta

    from points import archive

    deed = record(world, "lingliting")  # 5 points
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    client.patch(
        "/api/v1/deed-types/lingliting", json={"points": 50}, headers=f.bearer(world.users["admin"])
    )  # the county admin, their own region by default
    deeds.post_due(now=utcnow() + timedelta(days=30))
    fresh()
    assert db.session.get(Deed, deed.id).status == "posted"
    assert archive.totals(db.session, world.users["resident"].id)["balance"] == 5


def test_a_retired_type_cannot_be_recorded_in_the_subtree_and_can_be_brought_back(client, world):
    admin = f.bearer(world.users["admin"])
    retired = client.patch(
        "/api/v1/deed-types/luanduiluanfang", json={"active": False, "region_code": "430101"}, headers=admin
    )
    assert retired.status_code == 200 and retired.get_json()["active"] is False
    assert "luanduiluanfang" not in catalogue(client, "4301010101")
    assert catalogue(client, "4301010101", include_retired="true")["luanduiluanfang"]["active"] is False
    with pytest.raises(Invalid) as refused:
        record(world, "luanduiluanfang")
    assert refused.value.code == "deed_type_unknown"
    back = client.patch(
        "/api/v1/deed-types/luanduiluanfang", json={"active": True, "region_code": "430101"}, headers=admin
    )
    assert back.status_code == 200
    assert record(world, "luanduiluanfang").points == -5


def test_a_region_cannot_have_a_code_twice_and_codes_are_checked(client, world):
    admin = f.bearer(world.users["admin"])
    body = {"code": "zhuxue", "name": "助学捐款", "points": 8, "region_code": "4301"}
    assert client.post("/api/v1/deed-types", json=body, headers=admin).status_code == 201
    again = client.post("/api/v1/deed-types", json=body, headers=admin)
    assert again.status_code == 409 and again.get_json()["code"] == "deed_type_exists"
    for bad, field in (
        ({**body, "code": "助学"}, "code"),
        ({**body, "code": "x"}, "code"),
        ({**body, "points": 0}, "points"),
        ({**body, "points": 100_000}, "points"),
        ({**body, "points": "8"}, "points"),
        ({**body, "name": ""}, "name"),
    ):
        response = client.post("/api/v1/deed-types", json=bad, headers=admin)
        assert response.status_code == 422, bad
        assert field in response.get_json()["errors"], response.get_json()
    renamed = client.patch("/api/v1/deed-types/zhuxue", json={"code": "other", "name": "x"}, headers=admin)
    assert renamed.status_code == 422 and "code" in renamed.get_json()["errors"]


def test_an_unknown_code_or_a_region_out_of_reach_is_refused(client, world):
    admin = f.bearer(world.users["admin"])
    assert client.patch("/api/v1/deed-types/nope", json={"points": 3}, headers=admin).status_code == 404
    assert client.patch("/api/v1/deed-types/%00", json={"points": 3}, headers=admin).status_code == 404
    elsewhere = client.patch(
        "/api/v1/deed-types/haorenhaoshi",
        json={"points": 99, "region_code": "430101"},
        headers=f.bearer(world.users["admin_elsewhere"]),
    )
    assert elsewhere.status_code == 403
    unknown = client.get("/api/v1/deed-types?region_code=nowhere")
    assert unknown.status_code == 404
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(DeedType).where(DeedType.region_id.isnot(None))) == 0
    )


def test_the_admin_page_adds_and_reprices_for_the_chosen_region(client, world):
    from tests.authz import csrf_token, sign_in_page

    sign_in_page(client, world.users["admin"])
    page = client.get("/admin/deed-types?region=430101")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "好人好事" in html and "通用" in html
    added = client.post(
        "/admin/deed-types",
        data={
            "csrf_token": csrf_token(client),
            "region": "430101",
            "action": "add",
            "code": "zhuxue",
            "name": "助学捐款",
            "points": "8",
        },
    )
    assert added.status_code == 302
    changed = client.post(
        "/admin/deed-types",
        data={
            "csrf_token": csrf_token(client),
            "region": "430101",
            "action": "change",
            "code": "haorenhaoshi",
            "name": "好人好事",
            "points": "12",
            "active": "1",
        },
    )
    assert changed.status_code == 302
    html = client.get("/admin/deed-types?region=430101").get_data(as_text=True)
    assert "助学捐款" in html and "+12" in html and "本级" in html
    bad = client.post(
        "/admin/deed-types",
        data={
            "csrf_token": csrf_token(client),
            "region": "430101",
            "action": "add",
            "code": "BAD CODE",
            "name": "x",
            "points": "²",
        },
    )
    assert bad.status_code == 422
    assert "BAD CODE" in bad.get_data(as_text=True)  # the form keeps what was typed
