"""Figures from the rollups equal a recomputation from the raw rows, after any activity.

The points economy's random insiders (tests/test_points_economy.py) play on; after every step the
incremental `stats-refresh` runs and the summary, the tables by child region, by department and by
store (through the API) must equal what tests/stats_expected.py recomputes from the raw rows
in Python; at the end, a full rebuild must find exactly the rollups the increments left.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from core import clock
from core.db import db, utcnow
from stats import refresh
from stats.models import AreaRollup, DepartmentRollup, FlagRegion, FlagRow, RankRollup
from stats.refresh import ROLLUPS
from tests import factories as f
from tests import stats_expected as expected
from tests.authz import build_world
from tests.factories import fresh
from tests.test_points_economy import PHASES, Economy
from tests.volunteer_helpers import make_activity
from volunteer import activities, attendance, signups, tokens


def rollup_rows() -> dict[str, list[tuple]]:
    """Every rollup and derived row (flags by month, kind, place and what they say)."""
    fresh()
    out = {}
    for name, model in {**ROLLUPS, "area": AreaRollup, "department": DepartmentRollup, "rank": RankRollup}.items():
        columns = list(model.__table__.columns)
        out[name] = sorted(tuple(row) for row in db.session.execute(sa.select(*columns)).all())
    places: dict[int, list[int]] = {}
    for flag_id, region_id in db.session.execute(sa.select(FlagRegion.flag_id, FlagRegion.region_id)):
        places.setdefault(flag_id, []).append(region_id)
    out["flags"] = sorted(
        (str(row.month), row.kind, row.position, json.dumps(row.payload, sort_keys=True), sorted(places[row.id]))
        for row in db.session.execute(sa.select(FlagRow)).scalars().all()
    )
    fresh()
    return out


def get(client, who, path: str, **params):
    response = client.get(f"/api/v1{path}", query_string=params, headers=f.bearer(who))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def compare(actual: dict, wanted: dict, where: str) -> None:
    differences = {k: (actual.get(k), v) for k, v in wanted.items() if actual.get(k) != v}
    assert differences == {}, f"{where}: (rollups, raw rows) differ: {differences}"


def check_every_table(client, w, first, last) -> None:
    admin, county = w.users["admin"], w.regions["county"]
    period = {"from": first.isoformat(), "to": last.isoformat()}
    fresh()
    compare(get(client, admin, "/stats/summary", **period), expected.summary(county, first, last), "summary")
    township = get(client, admin, "/stats/summary", region_code="430101", **period)
    compare(township, expected.summary(w.regions["t1"], first, last), "summary of a township")
    rows = {r["region_code"]: r for r in get(client, admin, "/stats/by-region", **period)["items"]}
    wanted = expected.by_region(county, first, last)
    assert set(rows) == set(wanted)
    for code, figures in wanted.items():
        compare(rows[code], figures, f"by-region {code}")
    rows = {r["department_id"]: r for r in get(client, admin, "/stats/by-department", **period)["items"]}
    wanted = expected.by_department(county, first, last)
    assert set(rows) == set(wanted)
    for department_id, figures in wanted.items():
        compare(rows[department_id], figures, f"by-department {department_id}")
    rows = {r["store_id"]: r for r in get(client, admin, "/stats/by-store", **period)["items"]}
    wanted = expected.by_store(county, first, last)
    assert set(rows) == set(wanted)
    for store_id, figures in wanted.items():
        compare(rows[store_id], figures, f"by-store {store_id}")
    fresh()


def check_rankings(client, w, first, last) -> None:
    """Volunteers and households of the county and of a township, as the raw rows rank them."""
    period = {"from": first.isoformat(), "to": last.isoformat(), "limit": 100}
    fresh()
    for kind in ("volunteers", "households"):
        for root in (w.regions["county"], w.regions["t1"]):
            rows = get(client, w.users["admin"], f"/stats/rankings/{kind}", region_code=root.code, **period)
            got = [(r["id"], r["service_hours"], r["points"]) for r in rows]
            assert got == expected.ranking(kind, root, first, last), f"{kind} of {root.code} {first}..{last}"
    fresh()


class StatsEconomy(Economy):
    @invariant()
    def figures_equal_a_recomputation_from_raw_rows(self):
        fresh()
        refresh.refresh(now=utcnow())
        today = clock.today()
        check_every_table(self.client, self.w, today - timedelta(days=2), today)
        check_rankings(self.client, self.w, today - timedelta(days=2), today)
        check_rankings(self.client, self.w, date(today.year, 1, 1), today)
        # Until far ahead, where expiry may have run: what residents hold equals the ledger's balances.
        later = today + timedelta(days=1200)
        summary = get(self.client, self.w.users["admin"], "/stats/summary", to=later.isoformat())
        fresh()
        assert summary["points_outstanding"] == expected.resident_balances(self.w.regions["county"])

    def teardown(self):
        fresh()
        assert expected.area_problems() == []
        today = clock.today()
        check_every_table(self.client, self.w, date(today.year, 1, 1), today)  # the years' rows
        increments = rollup_rows()
        refresh.refresh(now=utcnow(), full=True)
        assert rollup_rows() == increments, "a full rebuild finds other rollups than the increments left"


def test_figures_equal_a_recomputation_from_raw_rows_after_random_activity(app, backend, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_MIN_GROUP", 1)  # compare every row, however small
    StatsEconomy.backend, StatsEconomy.app = backend, app
    run_state_machine_as_test(
        StatsEconomy,
        settings=settings(
            max_examples=3,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            phases=PHASES,
        ),
    )


@pytest.fixture
def w(app):
    return build_world()


def serve(w, who: str, activity, minutes: int) -> None:
    for at in (activity.starts_at, activity.starts_at + timedelta(minutes=minutes)):
        attendance.scan_venue_code(user=w.users[who], token=tokens.rotating(activity, at)[0], now=at)


def test_scanned_and_made_up_hours_are_counted_apart_and_no_shows_once_finished(app, client, w, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_MIN_GROUP", 1)
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=3, allow_walk_in=True)
    signups.sign_up(user=w.users["stranger"], activity_id=activity.id, now=activity.starts_at - timedelta(hours=1))
    serve(w, "resident", activity, 60)
    serve(w, "target", activity, 120)
    # The organizer adds an hour for the resident; a reviewer approves it (the four-eyes rule).
    attendance.correct(
        actor=w.users["organizer"],
        activity_id=activity.id,
        user_id=w.users["resident"].id,
        checked_in_at=activity.starts_at,
        checked_out_at=activity.starts_at + timedelta(minutes=120),
        reason="忘记签退",
        now=utcnow(),
    )
    attendance.approve(actor=w.users["reviewer"], activity_id=activity.id, user_id=w.users["resident"].id, now=utcnow())
    activities.finish(actor=w.users["organizer"], activity_id=activity.id, now=utcnow())
    refresh.refresh(now=utcnow())
    summary = get(client, w.users["admin"], "/stats/summary")
    assert summary["participations"] == 2 and summary["activities_held"] == 1
    assert (summary["service_hours"], summary["scanned_hours"], summary["makeup_hours"]) == (4.0, 3.0, 1.0)
    assert summary["points_issued"] == 40 and summary["points_outstanding"] == 40
    # Three confirmed (two walked in, one signed up and never came): one no-show in three.
    assert summary["no_show_rate"] == round(1 / 3, 4)
    assert summary["as_of"] is not None
    check_every_table(client, w, clock.today() - timedelta(days=1), clock.today())


def test_the_refresh_is_idempotent_and_reads_only_what_changed(app, w):
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=3, allow_walk_in=True)
    serve(w, "resident", activity, 60)
    first = refresh.refresh(now=utcnow())
    assert first.full and first.days["service"] >= 1
    before = rollup_rows()
    again = refresh.refresh(now=utcnow())
    assert rollup_rows() == before
    # The second run reads again what the first saw (a late commit under a lower id is not lost);
    # the third has nothing new to read.
    third = refresh.refresh(now=utcnow())
    assert not again.full and sum(third.days.values()) == 0 and rollup_rows() == before
    serve(w, "target", activity, 90)
    fourth = refresh.refresh(now=utcnow())
    assert fourth.days["service"] in (1, 2) and fourth.days["store"] == 0
    assert rollup_rows() != before


def test_figures_wait_for_the_refresh_and_say_how_fresh_they_are(app, client, w):
    empty = get(client, w.users["admin"], "/stats/summary")
    assert empty["as_of"] is None and empty["participations"] == 0
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=3, allow_walk_in=True)
    serve(w, "resident", activity, 60)
    assert get(client, w.users["admin"], "/stats/summary")["participations"] == 0
    moment = utcnow()
    refresh.refresh(now=moment)
    summary = get(client, w.users["admin"], "/stats/summary")
    assert summary["participations"] == 1 and summary["as_of"] == moment.isoformat()


def test_groups_under_five_people_show_no_figures_about_people(app, client, w):
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=3, allow_walk_in=True)
    serve(w, "resident", activity, 60)
    refresh.refresh(now=utcnow())
    rows = {r["region_code"]: r for r in get(client, w.users["admin"], "/stats/by-region")["items"]}
    # 桃花江镇 has six residents, 武潭镇 two: the small one shows its activities and nothing else.
    assert rows["430101"]["suppressed"] is False and rows["430101"]["participations"] == 1
    small = rows["430102"]
    assert small["suppressed"] is True and small["volunteers"] is None and small["points_issued"] is None
    assert small["activities"] == 0
    department = get(client, w.users["admin"], "/stats/by-department")["items"][0]
    assert department["suppressed"] is True and department["service_hours"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "from"),
        ({"from": "1999-01-01"}, "from"),
        ({"from": "2000-01-01", "to": "2020-01-01"}, "from"),
        ({"to": "２０２６-01-01"}, "to"),
    ],
)
def test_a_bad_period_is_a_422_naming_the_field(client, w, params, field):
    response = client.get("/api/v1/stats/summary", query_string=params, headers=f.bearer(w.users["admin"]))
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_ledger_check_names_a_rollup_row_that_differs_from_the_raw_rows(app, w):
    activity = make_activity(w, start_in=timedelta(hours=-4), hours=3, allow_walk_in=True)
    serve(w, "resident", activity, 60)
    refresh.refresh(now=utcnow())
    refresh.refresh(now=utcnow())  # nothing is left waiting for a refresh
    runner = app.test_cli_runner()
    sound = runner.invoke(args=["ledger", "check"])
    assert sound.exit_code == 0 and "stats:" not in sound.output, sound.output
    day = clock.today(activity.starts_at)
    for table, column in (("stats_service", "participations"), ("stats_area", "service_minutes")):
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = {column} + 1 WHERE grain = 'd' AND period = :day"),
                {"day": day},
            )
        fresh()
        broken = runner.invoke(args=["ledger", "check"])
        assert broken.exit_code == 1, broken.output
        name = "service rollup" if table == "stats_service" else "subtree figures of d"
        assert f"stats: {name}" in broken.output and str(day) in broken.output, broken.output
        refresh.refresh(now=utcnow(), full=True)  # the rebuild repairs it
        fresh()
        assert runner.invoke(args=["ledger", "check"]).exit_code == 0
