"""What ends a person's API tokens and web sessions: a password change, deactivation and the removal
of a role. Authorization reads grants per request, and a removed role also ends every sign-in."""

from __future__ import annotations

import sqlalchemy as sa

from community.models import RoleGrant
from core.db import db
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.test_volunteer_authz import body as activity


def signed_in(app, who):
    """A browser signed in as `who` and a bearer token of theirs, both working now."""
    browser = app.test_client()
    sign_in_page(browser, who)
    assert browser.get("/my/code").status_code == 200
    headers = f.bearer(who)
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200
    return browser, headers


def assert_ended(app, browser, headers) -> None:
    page = browser.get("/my/code")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401


def grant_of(who, role: str) -> int:
    return db.session.scalar(sa.select(RoleGrant.id).where(RoleGrant.user_id == who.id, RoleGrant.role == role))


def test_a_password_change_ends_other_sessions_and_tokens(app):
    w: World = build_world()
    who = w.users["resident"]
    other_browser, headers = signed_in(app, who)
    browser, _ = signed_in(app, who)
    form = {"old_password": f.PASSWORD, "new_password": "NewPassw0rd!", "csrf_token": csrf_token(browser)}
    changed = browser.post("/my/password", data=form)
    assert changed.status_code == 302 and "/login" in changed.headers["Location"]
    assert_ended(app, other_browser, headers)
    assert_ended(app, browser, headers)


def test_deactivation_ends_sessions_and_tokens(app):
    w = build_world()
    browser, headers = signed_in(app, w.users["organizer"])
    off = app.test_client().patch(
        f"/api/v1/users/{w.users['organizer'].id}", json={"active": False}, headers=f.bearer(w.users["admin"])
    )
    assert off.status_code == 200
    assert_ended(app, browser, headers)


def test_removing_a_role_through_the_api_ends_the_holders_sessions_and_tokens(app):
    w = build_world()
    clerk = w.users["clerk"]
    store = w.stores["s1"].id
    browser, headers = signed_in(app, clerk)
    assert browser.get(f"/stores/{store}/counter").status_code == 200
    client = app.test_client()
    assert client.get(f"/api/v1/stores/{store}/redemptions", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/roles/{grant_of(clerk, 'clerk')}", headers=f.bearer(w.users["admin"]))
    assert revoked.status_code == 204
    assert_ended(app, browser, headers)
    # Signed in afresh, the person is a resident only: the counter and its API refuse them.
    fresh()
    sign_in_page(browser, clerk)
    assert browser.get("/my/code").status_code == 200
    assert browser.get(f"/stores/{store}/counter").status_code in (403, 404)
    assert client.get(f"/api/v1/stores/{store}/redemptions", headers=f.bearer(clerk)).status_code in (403, 404)


def test_removing_a_role_on_the_admin_page_ends_the_holders_sessions_and_tokens(app):
    w = build_world()
    organizer = w.users["organizer"]
    browser, headers = signed_in(app, organizer)
    assert browser.get("/organizer/").status_code == 200
    admin_browser = app.test_client()
    sign_in_page(admin_browser, w.users["admin"])
    revoked = admin_browser.post(
        f"/admin/roles/{grant_of(organizer, 'organizer')}/revoke", data={"csrf_token": csrf_token(admin_browser)}
    )
    assert revoked.status_code == 302
    assert_ended(app, browser, headers)
    assert admin_browser.get("/admin/").status_code == 200  # the admin who revoked stays signed in


def test_grants_are_read_per_request_so_a_removed_role_is_never_used_again(app):
    """Grants are loaded with the person on every request, never carried in a token or session: a
    grant gone from the table (here deleted behind the service's back, so nothing is revoked) is
    refused at once to a sign-in that still works."""
    w = build_world()
    organizer = w.users["organizer"]
    browser, headers = signed_in(app, organizer)
    client = app.test_client()
    assert browser.get("/organizer/").status_code == 200
    assert client.post("/api/v1/activities", json=activity(w), headers=headers).status_code == 201
    db.session.execute(sa.delete(RoleGrant).where(RoleGrant.id == grant_of(organizer, "organizer")))
    db.session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert browser.get("/my/code").status_code == 200
    assert client.post("/api/v1/activities", json=activity(w), headers=headers).status_code == 403
    assert browser.get("/organizer/").status_code == 403
