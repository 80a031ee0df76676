"""An activity takes place inside its department's area, hence inside its organizer's scope: nobody
files an activity (and the points it will credit) under a village their department does not serve."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db import db, utcnow
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh
from volunteer.models import Activity


@pytest.fixture
def w(app):
    return build_world()


def create(client, w, region_code, organizer="organizer"):
    start = utcnow().replace(microsecond=0) + timedelta(days=1)
    body = {
        "title": "夜间巡逻",
        "category": "平安巡逻",
        "department_id": w.departments["d1"].id,  # 城关派出所, in 桃花江镇 (430101)
        "region_code": region_code,
        "address": "村口",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
    }
    return client.post("/api/v1/activities", headers=f.bearer(w.users[organizer]), json=body)


@pytest.mark.parametrize("region_code", ["430101", "43010101", "4301010101"])
def test_an_activity_may_take_place_anywhere_in_its_departments_area(client, w, region_code):
    created = create(client, w, region_code)
    assert created.status_code == 201, created.get_json()


@pytest.mark.parametrize(
    "region_code",
    ["43010201", "430102", "4301", "4300"],
    ids=["village_of_another_township", "another_township", "the_county_above", "the_city_above"],
)
def test_an_activity_outside_its_departments_area_is_refused(client, w, region_code):
    refused = create(client, w, region_code)
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["code"] == "region_outside_department" and "region_code" in body["errors"]
    fresh()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Activity)) == 0


def test_a_county_organizer_still_files_a_department_activity_only_in_that_departments_area(client, w):
    w.users["county_organizer"] = f.grant(f.user("4301", name="郑组织"), "organizer", "region", "4301")
    refused = create(client, w, "43010201", organizer="county_organizer")
    assert refused.status_code == 422 and refused.get_json()["code"] == "region_outside_department"
    assert create(client, w, "43010101", organizer="county_organizer").status_code == 201
