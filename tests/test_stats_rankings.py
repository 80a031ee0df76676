"""Rankings (红榜) and integrity flags: masking without consent, groups under five withheld, ties,
and every flag linking to the records that raised it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import accounts
from community.models import Household, User
from core.db import db, unit_of_work, utcnow
from exchange import redemption
from exchange.redemption import Line
from stats import refresh
from tests import factories as f
from tests.authz import build_world
from tests.volunteer_helpers import make_activity
from volunteer import attendance, tokens
from volunteer.models import Attendance


@pytest.fixture
def w(app):
    return build_world()


def serve(user, activity, minutes: int) -> None:
    for at in (activity.starts_at, activity.starts_at + timedelta(minutes=minutes)):
        attendance.scan_venue_code(user=user, token=tokens.rotating(activity, at)[0], now=at)


def rank(client, w, kind: str, **params):
    response = client.get(f"/api/v1/stats/rankings/{kind}", query_string=params, headers=f.bearer(w.users["admin"]))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Stats-As-Of"]
    return response.get_json()


def household(*people: User, number: str) -> None:
    with unit_of_work() as session:
        home = Household(number=number, region_id=people[0].region_id)
        session.add(home)
        session.flush()
        for person in people:
            session.get(User, person.id).household_id = home.id


@pytest.fixture
def served(w):
    """Seven residents of 花果山村 served 30 to 210 minutes at one activity; two consented to be named."""
    activity = make_activity(w, start_in=timedelta(hours=-5), hours=4, allow_walk_in=True)
    people = [
        f.user("4301010101", name=name, consent_public_name=name in ("王芳", "陈静"))
        for name in ("王芳", "李强", "陈静", "刘洋", "杨光", "赵敏", "孙丽")
    ]
    for minutes, person in zip((210, 180, 180, 120, 90, 60, 30), people, strict=True):
        serve(person, activity, minutes)
    household(people[1], people[3], number="43010101-0007")
    refresh.refresh(now=utcnow())
    return people


def test_volunteers_rank_by_points_with_names_masked_unless_they_consented(client, w, served):
    rows = rank(client, w, "volunteers", limit=4)
    assert [(r["rank"], r["name"], r["points"], r["service_hours"]) for r in rows] == [
        (1, "王芳", 35, 3.5),
        (2, "李*", 30, 3.0),  # equal figures share a rank
        (2, "陈静", 30, 3.0),
        (4, "刘*", 20, 2.0),
    ]
    assert [r["user_id"] for r in rows[:1]] == [served[0].id]
    assert all("phone" not in r for r in rows)


def test_households_are_named_by_their_number_and_sum_their_members(client, w, served):
    rows = rank(client, w, "households")
    assert rows == [
        {"rank": 1, "id": rows[0]["id"], "name": "43010101-0007户", "service_hours": 5.0, "points": 50, "people": 2}
    ]


def test_departments_and_villages_under_five_people_are_withheld(client, w, served, monkeypatch):
    department = rank(client, w, "departments")
    assert [(r["name"], r["people"], r["points"]) for r in department] == [("城关派出所", 7, 145)]
    villages = rank(client, w, "regions")
    assert [(r["code"], r["people"]) for r in villages] == [("43010101", 7)]
    assert [r["code"] for r in rank(client, w, "regions", level="township")] == ["430101"]
    monkeypatch.setitem(client.application.config, "STATS_MIN_GROUP", 8)
    assert rank(client, w, "departments") == [] and rank(client, w, "regions") == []
    assert len(rank(client, w, "volunteers")) == 7  # a red list of people is not a group


def test_a_ranking_sees_only_the_region_asked_for(client, w, served):
    assert rank(client, w, "volunteers", region_code="430102") == []
    response = client.get(
        "/api/v1/stats/rankings/volunteers?region_code=430101", headers=f.bearer(w.users["admin_elsewhere"])
    )
    assert response.status_code == 404


# Flags -------------------------------------------------------------------------------------------


def flags(client, w):
    response = client.get("/api/v1/stats/flags", headers=f.bearer(w.users["admin"]))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def test_an_operator_checking_many_in_within_minutes_is_flagged_with_each_attendance(app, client, w, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_FLAGS", {"burst_count": 5, "burst_minutes": 10})
    activity = make_activity(w, start_in=timedelta(minutes=-20), hours=3)
    people = [f.user("4301010101", name=f"居民{i}") for i in range(6)]
    from volunteer import signups

    for person in people:
        signups.sign_up(user=person, activity_id=activity.id, now=utcnow() - timedelta(minutes=30))
    start = utcnow() - timedelta(minutes=9)
    for i, person in enumerate(people):
        at = start + timedelta(minutes=i)
        attendance.scan_personal_code(
            organizer=w.users["organizer"],
            activity_id=activity.id,
            code=accounts.personal_code(person, at)[0],
            now=at,
        )
    refresh.refresh(now=utcnow())
    burst = [x for x in flags(client, w) if x["kind"] == "burst"]
    assert len(burst) == 1 and burst[0]["count"] == 6 and burst[0]["subject"]["id"] == w.users["organizer"].id
    linked = {(link["activity_id"], link["user_id"], link["id"]) for link in burst[0]["links"]}
    rows = db.session.execute(sa.select(Attendance.activity_id, Attendance.user_id, Attendance.id)).all()
    assert linked == {tuple(r) for r in rows}


def test_make_ups_auto_closes_caps_concentration_and_repeated_redemptions_are_flagged(app, client, w, monkeypatch):
    monkeypatch.setitem(
        app.config,
        "STATS_FLAGS",
        {
            "makeups": 1,
            "auto_closed": 1,
            "cap_minutes": 120,
            "days_at_cap": 1,
            "concentrated_top": 1,
            "concentrated_minimum": 10,
            "same_resident": 2,
        },
    )
    activity = make_activity(w, start_in=timedelta(hours=-6), hours=3, allow_walk_in=True)
    serve(w.users["resident"], activity, 180)  # 3 hours: at the (lowered) cap
    serve(w.users["target"], activity, 30)
    # The stranger checks in and never out: the job closes it at the end, and the organizer adds time.
    attendance.scan_venue_code(
        user=w.users["stranger"], token=tokens.rotating(activity, activity.starts_at)[0], now=activity.starts_at
    )
    attendance.close_missed_checkouts(now=utcnow())
    attendance.confirm(
        actor=w.users["organizer"], activity_id=activity.id, user_id=w.users["stranger"].id, now=utcnow()
    )
    for key in ("a", "b"):
        redemption.redeem(
            actor=w.users["clerk"],
            store_id=w.stores["s1"].id,
            lines=[Line(item_id=w.items["rice"].id, qty=1)],
            key=key,
            now=utcnow(),
            resident_id=w.users["resident"].id,
        )
    refresh.refresh(now=utcnow())
    everything = flags(client, w)
    found = {x["kind"]: x for x in everything}
    assert set(found) == {"makeups", "auto_closed", "days_at_cap", "concentrated", "same_residents"}
    paged = client.get("/api/v1/stats/flags?per_page=2&page=2", headers=f.bearer(w.users["admin"])).get_json()
    assert paged["total"] == 5 and paged["items"] == everything[2:4]
    stranger = db.session.scalar(sa.select(Attendance).where(Attendance.user_id == w.users["stranger"].id))
    for kind in ("makeups", "auto_closed"):
        assert [(link["type"], link["id"]) for link in found[kind]["links"]] == [("attendance", stranger.id)]
    assert found["makeups"]["subject"]["name"] == "赵组织"
    capped = found["days_at_cap"]
    assert capped["subject"] == {
        "type": "resident",
        "id": w.users["resident"].id,
        "name": "张**",
        "href": f"/admin/residents/{w.users['resident'].id}",
    }
    assert [link["user_id"] for link in capped["links"]] == [w.users["resident"].id]
    assert found["concentrated"]["links"] == [
        {"type": "resident", "id": w.users["resident"].id, "href": f"/admin/residents/{w.users['resident'].id}"}
    ]
    repeated = found["same_residents"]
    assert repeated["count"] == 2 and "张**" in repeated["detail"] and "刘店员" in repeated["detail"]
    assert [link["type"] for link in repeated["links"]] == ["resident", "redemption", "redemption"]
    assert all(
        client.get(link["href"], headers=f.bearer(w.users["admin"])).status_code != 500 for link in repeated["links"]
    )


def test_flags_are_asked_for_a_year_at_most(client, w):
    response = client.get("/api/v1/stats/flags?from=2025-01-01&to=2026-06-01", headers=f.bearer(w.users["admin"]))
    assert response.status_code == 422


def test_households_rank_by_number_whatever_their_size_and_never_name_their_members(client, w, served, monkeypatch):
    # DESIGN §8 names the household number as the way onto a ranking without consent: a household
    # is shown as one, however few live in it; groups (departments, villages) under the minimum are not.
    monkeypatch.setitem(client.application.config, "STATS_MIN_GROUP", 5)
    rows = rank(client, w, "households")
    assert [(r["name"], r["people"]) for r in rows] == [("43010101-0007户", 2)]
    shown = str(rows)
    assert all(person.name not in shown for person in served)
    monkeypatch.setitem(client.application.config, "STATS_MIN_GROUP", 8)
    assert rank(client, w, "departments") == [] and len(rank(client, w, "households")) == 1


def test_a_staff_member_who_signs_residents_up_by_proxy_and_checks_them_in_by_card_is_flagged(
    app, client, w, monkeypatch
):
    monkeypatch.setitem(app.config, "STATS_FLAGS", {"proxy_checkins": 2})
    from volunteer import signups

    activity = make_activity(w, start_in=timedelta(hours=-2), hours=3)
    organizer = w.users["organizer"]
    neighbour = f.user("4301010101", name="陈三")  # signed up by the grid worker: not the organizer's doing
    for person, proxy in (
        (w.users["target"], organizer),
        (w.users["resident"], organizer),
        (neighbour, w.users["grid_worker"]),
    ):
        signups.sign_up_for(actor=proxy, activity_id=activity.id, user_id=person.id, now=utcnow())
        card = accounts.card_code(accounts.issue_card(actor=w.users["admin"], user_id=person.id, now=utcnow()))
        attendance.scan_personal_code(
            organizer=organizer, activity_id=activity.id, code=card, now=utcnow() - timedelta(minutes=30)
        )
    refresh.refresh(now=utcnow())
    [flag] = [x for x in flags(client, w) if x["kind"] == "proxy_checkins"]
    assert flag["count"] == 2 and flag["subject"] == {"type": "user", "id": organizer.id, "name": organizer.name}
    assert flag["title"] == "代办报名并代为刷卡签到" and flag["month"] == utcnow().strftime("%Y-%m")
    rows = db.session.execute(
        sa.select(Attendance.id, Attendance.user_id).where(
            Attendance.user_id.in_([w.users["target"].id, w.users["resident"].id])
        )
    ).all()
    assert sorted((link["id"], link["user_id"]) for link in flag["links"]) == sorted(tuple(r) for r in rows)
    # A township outside the activity's does not see it.
    elsewhere = client.get(
        "/api/v1/stats/flags", query_string={"region_code": "430102"}, headers=f.bearer(w.users["admin"])
    )
    assert [x["kind"] for x in elsewhere.get_json()["items"]] == []
    monkeypatch.setitem(app.config, "STATS_FLAGS", {"proxy_checkins": 3})
    refresh.refresh(now=utcnow(), full=True)
    assert [x for x in flags(client, w) if x["kind"] == "proxy_checkins"] == []
