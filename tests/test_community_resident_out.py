"""Whoever sees a resident other than the resident themself sees the phone masked (前3后4), on every
page and in every API answer that shows people; and a resident one may not read is as missing as
one who does not exist."""

from __future__ import annotations

import pytest

from community import pii
from tests import factories as f
from tests.authz import build_world, sign_in_page


@pytest.fixture
def w(app):
    return build_world()  # the deed catalogue comes with the migrations


def _page(app, who, path, query=None) -> str:
    client = app.test_client()
    sign_in_page(client, who)
    response = client.get(path, query_string=query or {})
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("viewer", "path", "query"),
    [
        ("admin", "/admin/roles", {"q": "张小明"}),
        ("admin", "/admin/residents", {}),
        ("admin", "/admin/users", {"q": "张小明"}),
        ("grid_worker", "/deeds/new", {}),
        ("clerk", "counter", {"name": "张小明"}),
    ],
    ids=["admin people search", "admin residents", "admin users", "deed form", "counter search"],
)
def test_pages_that_list_residents_show_their_phone_masked(app, w, viewer, path, query):
    resident = w.users["resident"]
    if path == "counter":
        path = f"/stores/{w.stores['s1'].id}/counter"
        query = {**query, "phone_tail": resident.phone[-4:]}
    html = _page(app, w.users[viewer], path, query)
    assert resident.name in html
    assert pii.mask_phone(resident.phone) in html
    assert resident.phone not in html


def test_the_grants_table_shows_each_holders_phone_masked(app, w):
    organizer = w.users["organizer"]
    html = _page(app, w.users["admin"], "/admin/roles")
    assert organizer.name in html and pii.mask_phone(organizer.phone) in html
    assert organizer.phone not in html


def test_an_admin_reads_a_residents_archive_with_the_phone_masked(client, w):
    resident = w.users["resident"]
    response = client.get(f"/api/v1/residents/{resident.id}/archive", headers=f.bearer(w.users["admin"]))
    assert response.status_code == 200
    shown = response.get_json()["resident"]
    assert set(shown) == {"id", "name", "phone", "volunteer_no", "region_code", "household_id"}
    assert shown["phone"] == pii.mask_phone(resident.phone) != resident.phone
    assert shown["region_code"] == "4301010101"


@pytest.mark.parametrize("whose", ["out of scope", "missing"])
def test_a_resident_outside_the_readers_regions_is_as_missing_as_one_who_does_not_exist(client, w, whose):
    resident_id = w.users["stranger"].id if whose == "out of scope" else 999_999
    for path in (f"/api/v1/residents/{resident_id}/archive", f"/api/v1/residents/{resident_id}/archive/verify"):
        response = client.get(path, headers=f.bearer(w.users["reviewer"]))
        assert response.status_code == 404 and response.get_json()["code"] == "not_a_resident"
