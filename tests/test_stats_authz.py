"""Every statistics route and page against every kind of caller: admins and reviewers read the
figures of their own regions; a region outside their scope is not even said to exist (404)."""

from __future__ import annotations

import pytest

from core import clock
from core.db import utcnow
from stats import reports
from tests.authz import Case, World, check_matrix


def county_report(w: World) -> int:
    """This month's report of the county (only its admin covers it: the reviewer is a township's)."""
    if "report" not in w.extra:
        written = reports.write_month(now=utcnow(), month=clock.today().replace(day=1))
        w.extra["report"] = next(r.id for r in written if r.region_id == w.regions["county"].id)
    return w.extra["report"]


# The township 桃花江镇: the county admin and the township's reviewer cover it, the admin of the
# sibling township does not (404); everyone else lacks the role (403).
IN_T1 = "region_code=430101"
READERS = {"admin": 200, "reviewer": 200, "admin_elsewhere": 404, "anonymous": 401}
PAGE_READERS = {**READERS, "anonymous": 302}


def api(name: str, path: str) -> Case:
    return Case(name, "GET", f"/api/v1/stats/{path}{'&' if '?' in path else '?'}{IN_T1}", 403, READERS)


CASES = [
    api("summary", "summary"),
    api("by region", "by-region"),
    api("by department", "by-department"),
    api("by store", "by-store"),
    api("monthly", "monthly"),
    api("flags", "flags"),
    api("volunteer ranking", "rankings/volunteers"),
    api("household ranking", "rankings/households"),
    api("department ranking", "rankings/departments"),
    api("region ranking", "rankings/regions?level=grid"),
    api("export", "export?table=by-region&format=xlsx"),
    Case("reports", "GET", "/api/v1/reports", 403, {**READERS, "admin_elsewhere": 200}),
    Case("report", "GET", lambda w: f"/api/v1/reports/{county_report(w)}", 403, {**READERS, "reviewer": 404}),
    # Pages
    Case("dashboard", "GET", f"/stats/?{IN_T1}", 403, PAGE_READERS, page=True),
    Case("dashboard, own region", "GET", "/stats/", 403, {**PAGE_READERS, "admin_elsewhere": 200}, page=True),
    Case("report list", "GET", "/stats/reports", 403, {**PAGE_READERS, "admin_elsewhere": 200}, page=True),
    Case(
        "report page",
        "GET",
        lambda w: f"/stats/reports/{county_report(w)}",
        403,
        {**PAGE_READERS, "reviewer": 404},
        page=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_route_authorization(app, backend, case):
    check_matrix(app, backend, case)


def test_without_a_region_each_reader_gets_their_own_and_others_are_refused(app, client):
    from tests import factories as f
    from tests.authz import build_world

    w = build_world()
    for who, code in (("admin", "4301"), ("reviewer", "430101"), ("admin_elsewhere", "430102")):
        response = client.get("/api/v1/stats/summary", headers=f.bearer(w.users[who]))
        assert response.status_code == 200 and response.get_json()["region_code"] == code
    for who in ("resident", "organizer", "clerk", "grid_worker"):
        assert client.get("/api/v1/stats/summary", headers=f.bearer(w.users[who])).status_code == 403
    unknown = client.get("/api/v1/stats/summary?region_code=nowhere", headers=f.bearer(w.users["admin"]))
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "region_not_found"
