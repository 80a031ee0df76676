"""Regions form a tree with unique codes; subtree queries and scope checks follow it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from community import services
from community.models import Region
from core.db import db, utcnow
from core.errors import Conflict, Forbidden, Invalid
from tests import factories as f
from tests.authz import build_world


def test_subtree_is_one_prefix_query_and_excludes_siblings(app):
    w = build_world()
    codes = {r.code for r in db.session.scalars(sa.select(Region).where(services.subtree(w.regions["t1"])))}
    assert codes == {"430101", "43010101", "4301010101"}
    assert w.regions["county"].contains(w.regions["g1"]) and not w.regions["t2"].contains(w.regions["g1"])


def test_a_region_sits_below_its_parents_level(app):
    f.region("4301", level="county")
    f.region("430101", level="township", parent="4301")
    with pytest.raises(Invalid) as refused:
        f.region("430199", level="county", parent="430101")
    assert refused.value.code == "region_level_invalid"
    with pytest.raises(Invalid):
        f.region("439999", level="grid")  # a root must be a city or county


def test_region_codes_are_unique(app):
    f.region("4301", level="county")
    with pytest.raises(Conflict):
        f.region("4301", level="county")


def test_an_admin_adds_regions_only_inside_their_subtree(app):
    w = build_world()
    services.create_region(
        actor=w.users["admin_elsewhere"],
        code="43010299",
        name="新村",
        level="village",
        parent_code="430102",
        now=utcnow(),
    )
    with pytest.raises(Forbidden):
        services.create_region(
            actor=w.users["admin_elsewhere"],
            code="43010199",
            name="越界村",
            level="village",
            parent_code="430101",
            now=utcnow(),
        )
    with pytest.raises(Forbidden):
        services.create_region(
            actor=w.users["admin"], code="5000", name="新县", level="county", parent_code=None, now=utcnow()
        )


def test_the_regions_api_filters_by_parent_level_subtree_and_name(client, app):
    build_world()
    children = client.get("/api/v1/regions?parent_code=4301").get_json()
    assert [r["code"] for r in children["items"]] == ["430101", "430102"]
    assert children["total"] == 2 and children["page"] == 1 and children["per_page"] == 20
    grids = client.get("/api/v1/regions?within=430101&level=grid").get_json()
    assert [r["code"] for r in grids["items"]] == ["4301010101"]
    by_name = client.get("/api/v1/regions?q=武潭").get_json()
    assert [r["name"] for r in by_name["items"]] == ["武潭镇"]
    paged = client.get("/api/v1/regions?per_page=3&page=2").get_json()
    assert paged["total"] == 8 and len(paged["items"]) == 3
    assert client.get("/api/v1/regions?per_page=1000").get_json()["per_page"] == 100
    assert client.get("/api/v1/regions?page=0").status_code == 422
    assert client.get("/api/v1/regions?per_page=abc").status_code == 422
    assert client.get("/api/v1/regions/nowhere").status_code == 404


def test_creating_regions_and_departments_through_the_api(client, app):
    w = build_world()
    headers = f.bearer(w.users["admin"])
    created = client.post(
        "/api/v1/regions",
        headers=headers,
        json={"code": "43010102", "name": "桃花村", "level": "village", "parent_code": "430101"},
    )
    assert created.status_code == 201
    assert created.get_json() | {"id": 0} == {
        "id": 0,
        "code": "43010102",
        "name": "桃花村",
        "level": "village",
        "parent_code": "430101",
    }
    again = client.post(
        "/api/v1/regions",
        headers=headers,
        json={"code": "43010102", "name": "桃花村", "level": "village", "parent_code": "430101"},
    )
    assert again.status_code == 409 and again.get_json()["code"] == "region_code_taken"
    wrong_level = client.post(
        "/api/v1/regions",
        headers=headers,
        json={"code": "43010103", "name": "x", "level": "county", "parent_code": "430101"},
    )
    assert wrong_level.status_code == 422 and "level" in wrong_level.get_json()["errors"]
    bad_level = client.post(
        "/api/v1/regions",
        headers=headers,
        json={"code": "43010103", "name": "x", "level": "planet", "parent_code": "430101"},
    )
    assert bad_level.status_code == 422 and "level" in bad_level.get_json()["errors"]
    department = client.post(
        "/api/v1/departments", headers=headers, json={"name": "桃花村委会", "region_code": "43010102"}
    )
    assert department.status_code == 201
    body = department.get_json()
    assert body["name"] == "桃花村委会" and body["region_code"] == "43010102" and isinstance(body["id"], int)
    listed = client.get("/api/v1/departments?region_code=430101").get_json()
    assert {d["name"] for d in listed["items"]} == {"城关派出所", "桃花村委会"}


def test_granting_roles_checks_the_scope_of_the_grantor(client, app):
    w = build_world()
    body = {"user_id": w.users["target"].id, "role": "reviewer", "scope_type": "region", "scope_id": "430101"}
    granted = client.post("/api/v1/roles", headers=f.bearer(w.users["admin"]), json=body)
    assert granted.status_code == 201
    assert granted.get_json() | {"id": 0, "created_at": ""} == {
        "id": 0,
        "created_at": "",
        "user_id": w.users["target"].id,
        "role": "reviewer",
        "scope_type": "region",
        "scope_id": "430101",
    }
    assert client.post("/api/v1/roles", headers=f.bearer(w.users["admin"]), json=body).status_code == 409
    me = client.get("/api/v1/me", headers=f.bearer(w.users["target"])).get_json()
    assert me["roles"] == [{"role": "reviewer", "scope_type": "region", "scope_id": "430101"}]
    outside = client.post("/api/v1/roles", headers=f.bearer(w.users["admin_elsewhere"]), json=body)
    assert outside.status_code == 403
    for wrong in (
        {"role": "clerk", "scope_type": "region"},
        {"role": "admin", "scope_type": "department", "scope_id": w.departments["d1"].id},
    ):
        refused = client.post("/api/v1/roles", headers=f.bearer(w.users["admin"]), json={**body, **wrong})
        assert refused.status_code == 422
    missing_scope = client.post(
        "/api/v1/roles", headers=f.bearer(w.users["admin"]), json={**body, "scope_id": "no-such-region"}
    )
    assert missing_scope.status_code == 422 and "scope_id" in missing_scope.get_json()["errors"]
    no_user = client.post("/api/v1/roles", headers=f.bearer(w.users["admin"]), json={**body, "user_id": 99999})
    assert no_user.status_code == 422 and "user_id" in no_user.get_json()["errors"]


def test_listing_roles_shows_only_grants_in_the_admins_scope(client, app):
    w = build_world()
    inside = client.get("/api/v1/roles", headers=f.bearer(w.users["admin_elsewhere"])).get_json()
    assert [g["user_id"] for g in inside["items"]] == [w.users["admin_elsewhere"].id]
    everything = client.get("/api/v1/roles", headers=f.bearer(w.users["admin"])).get_json()
    assert everything["total"] == 5
