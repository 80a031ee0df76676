"""An idempotent request's change and its stored response commit together (issue 13, crash safety).

Before, the response was stored in a transaction of its own after the change had committed: a
server killed between the two kept the change without the response, and a retry of a deed ran the
service again and recorded the deed twice (a void answered 409 instead of its first 200). A 202 (an
adjustment waiting for a second admin) is kept too, so its repeat does not turn into the later 201."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core import idempotency
from core.db import db, utcnow
from core.idempotency import IdempotencyRecord
from exchange.models import Redemption
from points import ledger
from points.models import Deed
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh


class Killed(BaseException):
    """The server dies here (a BaseException: nothing in the app handles it, as with SIGKILL)."""


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    return world


def deed_body(w) -> dict:
    return {
        "resident_id": w.users["resident"].id,
        "deed_type": "haorenhaoshi",
        "description": "帮邻居抢收稻谷",
        "occurred_on": utcnow().date().isoformat(),
    }


def post_deed(client, w, key: str, body: dict | None = None):
    headers = {**f.bearer(w.users["grid_worker"]), "Idempotency-Key": key}
    return client.post("/api/v1/deeds", json=body or deed_body(w), headers=headers)


def count(model) -> int:
    fresh()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def die_while_storing_the_response(monkeypatch) -> None:
    def killed(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(idempotency, "_record", killed)


def test_a_deed_retried_with_its_key_is_recorded_once(client, w):
    first = post_deed(client, w, "deed-1")
    again = post_deed(client, w, "deed-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert count(Deed) == 1
    other = post_deed(client, w, "deed-1", {**deed_body(w), "description": "另一件事"})
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"
    assert post_deed(client, w, "deed-2").status_code == 201 and count(Deed) == 2


def test_a_deed_killed_before_its_response_was_stored_is_not_kept_and_its_retry_records_it_once(client, w, monkeypatch):
    with monkeypatch.context() as patch:
        die_while_storing_the_response(patch)
        with pytest.raises(Killed):
            post_deed(client, w, "deed-k")
    db.session.rollback()
    assert count(Deed) == 0 and count(IdempotencyRecord) == 0
    retried = post_deed(client, w, "deed-k")
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    assert post_deed(client, w, "deed-k").get_json() == retried.get_json()
    assert count(Deed) == 1


def test_a_void_killed_before_its_response_was_stored_answers_its_retry_with_200(client, w, monkeypatch):
    clerk, admin = f.bearer(w.users["clerk"]), f.bearer(w.users["admin"])
    basket = {"resident_id": w.users["resident"].id, "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}
    made = client.post(
        f"/api/v1/stores/{w.stores['s1'].id}/redemptions", json=basket, headers={**clerk, "Idempotency-Key": "r-1"}
    )
    assert made.status_code == 201
    path = f"/api/v1/redemptions/{made.get_json()['id']}/void"
    headers = {**admin, "Idempotency-Key": "v-1"}
    with monkeypatch.context() as patch:
        die_while_storing_the_response(patch)
        with pytest.raises(Killed):
            client.post(path, json={"reason": "拿错了"}, headers=headers)
    db.session.rollback()
    fresh()
    assert db.session.scalar(sa.select(Redemption.status)) == "completed"
    assert ledger.balance(db.session, w.users["resident"].id) == 90
    retried = client.post(path, json={"reason": "拿错了"}, headers=headers)
    assert retried.status_code == 200 and retried.get_json()["status"] == "voided"
    assert client.post(path, json={"reason": "拿错了"}, headers=headers).get_json() == retried.get_json()
    fresh()
    assert ledger.balance(db.session, w.users["resident"].id) == 100
    assert ledger.invariant_problems(db.session) == []


def test_a_pending_adjustment_repeated_after_its_approval_gets_its_first_202(client, w):
    admin, resident = w.users["admin"], w.users["resident"]
    second = f.grant(f.user("4301", name="郑管理"), "admin", "region", "4301")
    headers = {**f.bearer(admin), "Idempotency-Key": "flood-1"}
    path = f"/api/v1/residents/{resident.id}/adjustments"
    first = client.post(path, json={"points": 100, "reason": "抗洪抢险表彰"}, headers=headers)
    assert first.status_code == 202 and first.get_json()["status"] == "pending"
    approved = client.post(f"/api/v1/adjustments/{first.get_json()['id']}/approve", json={}, headers=f.bearer(second))
    assert approved.status_code == 200
    again = client.post(path, json={"points": 100, "reason": "抗洪抢险表彰"}, headers=headers)
    assert (again.status_code, again.get_json()) == (202, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"
    fresh()
    assert ledger.balance(db.session, resident.id) == 200
