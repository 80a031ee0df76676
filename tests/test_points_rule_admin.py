"""Point rules and region policies set by admins: a child region inherits unless it overrides; an
activity without its own rate uses its region's rule; each credit keeps the rule version it used,
so the archive explains old credits after a change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import accounts
from core.audit import AuditEntry
from core.db import db
from points import archive, policies
from points.models import PointRule, RegionPolicy
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups


@pytest.fixture
def world(app) -> World:
    return build_world()


def put(client, who, region_code: str, **body):
    return client.put(f"/api/v1/point-rules/{region_code}", json=body, headers=f.bearer(who))


def rule_of(client, who, region_code: str) -> dict:
    response = client.get(f"/api/v1/point-rules/{region_code}", headers=f.bearer(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def serve(w: World, *, minutes: int, start_in: timedelta, **activity_values):
    """The target serves `minutes` at a new activity of the village 43010101, scanned in and out."""
    activity = make_activity(w, start_in=start_in, hours=3, **activity_values)
    volunteer, organizer = w.users["target"], w.users["organizer"]
    signups.sign_up(user=volunteer, activity_id=activity.id, now=activity.starts_at - timedelta(hours=1))
    row = None
    for moment in (activity.starts_at, activity.starts_at + timedelta(minutes=minutes)):
        code = accounts.personal_code(volunteer, moment)[0]
        row, _ = attendance.scan_personal_code(organizer=organizer, activity_id=activity.id, code=code, now=moment)
    return row


def test_a_fresh_region_shows_the_built_in_rule_and_where_it_comes_from(client, world):
    body = rule_of(client, world.users["admin"], "43010101")
    assert body == {
        "region_code": "43010101",
        "region_name": "花果山村",
        "level": "village",
        "points_per_hour": 10,
        "rounding_minutes": 30,
        "minimum_minutes": 30,
        "daily_cap_minutes": 480,
        "version": 0,
        "expiry": "none",
        "settlement_month": 1,
        "settlement_day": 1,
        "notice_days": 3,
        "own_rule": False,
        "rule_from": None,
        "own_policy": False,
        "policy_from": None,
    }


def test_a_county_rule_is_inherited_until_a_village_overrides_it(client, world):
    admin = world.users["admin"]
    county = put(client, admin, "4301", points_per_hour=12, rounding_minutes=15, expiry="annual", settlement_month=3)
    assert county.status_code == 200, county.get_json()
    assert county.get_json()["own_rule"] and county.get_json()["own_policy"]
    village = rule_of(client, admin, "43010101")
    assert (village["points_per_hour"], village["rounding_minutes"], village["rule_from"]) == (12, 15, "4301")
    assert (village["expiry"], village["settlement_month"], village["policy_from"]) == ("annual", 3, "4301")
    # The village sets its own rate only: the rest is what it inherited, now its own.
    own = put(client, admin, "43010101", points_per_hour=20).get_json()
    assert (own["points_per_hour"], own["rounding_minutes"], own["minimum_minutes"]) == (20, 15, 30)
    assert own["own_rule"] and own["rule_from"] == "43010101"
    assert own["policy_from"] == "4301"  # its policy was not touched: still inherited
    # A later county change reaches the sibling township's villages, not the one that overrode it.
    put(client, admin, "4301", points_per_hour=8)
    assert rule_of(client, admin, "43010201")["points_per_hour"] == 8
    assert rule_of(client, admin, "43010101")["points_per_hour"] == 20
    assert rule_of(client, admin, "4301010101")["rule_from"] == "43010101"  # its grid follows the village
    # The batched view says what rule_for (used at settlement) says.
    grid = world.regions["g1"]
    assert policies.rule_for(db.session, grid, "平安巡逻").points_per_hour == 20
    listed = client.get("/api/v1/point-rules?per_page=100", headers=f.bearer(admin)).get_json()
    assert listed["total"] == 7  # the county and everything below it
    assert {r["region_code"]: r["points_per_hour"] for r in listed["items"]}["4301010101"] == 20


def test_setting_a_policy_on_a_village_keeps_what_it_inherited_otherwise(client, world):
    admin = world.users["admin"]
    put(client, admin, "4301", notice_days=7)
    put(client, admin, "43010101", expiry="annual")
    row = db.session.get(RegionPolicy, world.regions["v1"].id)
    assert (row.expiry, row.notice_days) == ("annual", 7)


def test_putting_the_same_rule_again_makes_no_new_version(client, world):
    admin = world.users["admin"]
    first = put(client, admin, "430101", points_per_hour=12).get_json()
    again = put(client, admin, "430101", points_per_hour=12).get_json()
    assert first["version"] == again["version"] != 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 1
    audits = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "point_rule.create")).all()
    assert audits == ["point_rule.create"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"points_per_hour": 101}, "points_per_hour"),
        ({"points_per_hour": "12"}, "points_per_hour"),
        ({"rounding_minutes": 0}, "rounding_minutes"),
        ({"daily_cap_minutes": 2000}, "daily_cap_minutes"),
        ({"rounding_minutes": 60, "daily_cap_minutes": 30}, "daily_cap_minutes"),
        ({"expiry": "monthly"}, "expiry"),
        ({"settlement_day": 31}, "settlement_day"),
    ],
)
def test_bad_rules_are_a_422_and_change_nothing(client, world, body, field):
    response = put(client, world.users["admin"], "430101", **body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 0


def test_only_admins_over_the_region_read_or_set_its_rule(client, world):
    assert put(client, world.users["admin_elsewhere"], "430101", points_per_hour=99).status_code == 403
    assert put(client, world.users["reviewer"], "430101", points_per_hour=99).status_code == 403
    assert put(client, world.users["admin"], "nowhere", points_per_hour=9).status_code == 404
    elsewhere = client.get("/api/v1/point-rules", headers=f.bearer(world.users["admin_elsewhere"])).get_json()
    assert {r["region_code"] for r in elsewhere["items"]} == {"430102", "43010201", "4301020101"}
    asked = client.get("/api/v1/point-rules?region_code=430101", headers=f.bearer(world.users["admin_elsewhere"]))
    assert asked.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 0


def test_an_activity_without_its_own_rate_uses_its_regions_rule(client, world):
    put(client, world.users["admin"], "43010101", points_per_hour=20)
    plain = serve(world, minutes=60, start_in=timedelta(days=-3))
    own_rate = serve(world, minutes=60, start_in=timedelta(days=-2), points_per_hour=15)
    assert (plain.credited_minutes, plain.points) == (60, 20)
    assert (own_rate.credited_minutes, own_rate.points) == (60, 15)
    page = client.get(f"/activities/{make_activity(world, start_in=timedelta(days=2)).id}")
    assert "每小时 20 分" in page.get_data(as_text=True)


def test_old_and_new_credits_are_each_explained_by_the_rule_they_used(client, world):
    admin, volunteer = world.users["admin"], world.users["target"]
    first_version = put(client, admin, "4301", points_per_hour=10, rounding_minutes=30).get_json()["version"]
    before = serve(world, minutes=75, start_in=timedelta(days=-3))  # 60 credited at 10/h
    second_version = put(client, admin, "4301", points_per_hour=20, rounding_minutes=15).get_json()["version"]
    after = serve(world, minutes=75, start_in=timedelta(days=-2))  # 75 credited at 20/h
    assert (before.points, after.points) == (10, 25)
    assert second_version > first_version

    old, new = archive.entries(db.session, volunteer.id)
    assert old.details["credit"]["rule"]["version"] == first_version
    assert (old.details["credit"]["rule"]["points_per_hour"], old.details["credit"]["rule"]["unit_minutes"]) == (10, 30)
    assert new.details["credit"]["rule"]["version"] == second_version
    assert (new.details["credit"]["rule"]["points_per_hour"], new.details["credit"]["rule"]["unit_minutes"]) == (20, 15)
    # What the resident reads: each line explained by its own rule, after the change.
    entries = client.get("/api/v1/me/archive", headers=f.bearer(volunteer)).get_json()["entries"]
    by_seq = {e["seq"]: e for e in entries}
    assert by_seq[old.seq]["explanation"] == "10 分 = 1 小时 × 10 分/小时（按 30 分钟取整）"
    assert by_seq[old.seq]["rule"] == {
        "version": first_version,
        "points_per_hour": 10,
        "rounding_minutes": 30,
        "minimum_minutes": 30,
        "daily_cap_minutes": 480,
    }
    assert by_seq[new.seq]["explanation"] == "25 分 = 1.25 小时 × 20 分/小时（按 15 分钟取整）"
    assert by_seq[new.seq]["rule"]["version"] == second_version
    sign_in_page(client, admin)
    page = client.get(f"/admin/residents/{volunteer.id}").get_data(as_text=True)
    assert f"积分规则 第 {first_version} 版" in page and f"积分规则 第 {second_version} 版" in page


def test_the_rules_page_shows_what_a_region_inherits_and_saves_its_own(client, world):
    admin = world.users["admin"]
    put(client, admin, "4301", points_per_hour=12)
    sign_in_page(client, admin)
    html = client.get("/admin/point-rules?region=430101").get_data(as_text=True)
    assert "继承自桃江县" in html and "上级（桃江县）现行：12 分/小时" in html
    form = {
        "csrf_token": csrf_token(client),
        "region": "430101",
        "points_per_hour": "15",
        "rounding_minutes": "30",
        "minimum_minutes": "30",
        "daily_cap_minutes": "480",
        "expiry": "annual",
        "settlement_month": "1",
        "settlement_day": "1",
        "notice_days": "3",
    }
    saved = client.post("/admin/point-rules", data=form)
    assert saved.status_code == 302
    html = client.get("/admin/point-rules?region=430101").get_data(as_text=True)
    assert "本级设置" in html and "15 分/小时" in html and "每年 1 月 1 日结算过期" in html
    bad = client.post("/admin/point-rules", data={**form, "csrf_token": csrf_token(client), "points_per_hour": "١٢"})
    assert bad.status_code == 422
    assert rule_of(client, admin, "430101")["points_per_hour"] == 15
