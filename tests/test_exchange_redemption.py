"""The counter: points for goods, all or nothing, once per key; voids give everything back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import accounts
from core.db import db, utcnow
from core.jobs import run_job
from core.notify import Notification
from exchange import inventory, redemption
from exchange.models import Item, Redemption, StockMovement
from points import archive, ledger
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    return world


def basket(w, *pairs, who="resident", code=False):
    lines = [{"item_id": w.items[name].id, "qty": qty} for name, qty in pairs]
    person = w.users[who]
    body = {"lines": lines}
    if code:
        body["code"] = accounts.personal_code(person, utcnow())[0]
    else:
        body["resident_id"] = person.id
    return body


def post(client, w, body, key=None, clerk="clerk"):
    headers = f.bearer(w.users[clerk])
    if key:
        headers["Idempotency-Key"] = key
    return client.post(f"/api/v1/stores/{w.stores['s1'].id}/redemptions", json=body, headers=headers)


def code_of(w, who="resident") -> str:
    return accounts.personal_code(w.users[who], utcnow())[0]


def stock(item) -> int:
    fresh()
    return db.session.get(Item, item.id).stock


def sound():
    fresh()
    assert ledger.invariant_problems(db.session) == []
    assert inventory.invariant_problems(db.session) == []


def test_a_scanned_code_redeems_a_basket(client, w):
    response = post(client, w, basket(w, ("oil", 2), ("rice", 1), code=True), key="b1")
    assert response.status_code == 201
    body = response.get_json()
    assert body["total_points"] == 25 and body["balance_after"] == 75
    assert [(ln["name"], ln["qty"], ln["points"]) for ln in body["lines"]] == [("食用油", 2, 20), ("大米", 1, 5)]
    assert stock(w.items["oil"]) == 3 and stock(w.items["rice"]) == 9
    entries = archive.entries(db.session, w.users["resident"].id)
    assert entries[-1].kind == "redemption" and entries[-1].points == -25 and "食用油×2" in entries[-1].summary
    sound()


def test_insufficient_points_change_nothing(client, w):
    poor = f.user("43010101", name="穷小子")
    f.fund(poor, 9)
    w.users["poor"] = poor
    response = post(client, w, basket(w, ("oil", 1), who="poor"))
    assert response.status_code == 422 and response.get_json()["code"] == "insufficient_points"
    assert stock(w.items["oil"]) == 5 and ledger.balance(db.session, poor.id) == 9
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Redemption)) == 0
    sound()


def test_out_of_stock_changes_nothing(client, w):
    response = post(client, w, basket(w, ("rice", 1), ("oil", 6)))
    assert response.status_code == 422 and response.get_json()["code"] == "out_of_stock"
    assert stock(w.items["rice"]) == 10 and ledger.balance(db.session, w.users["resident"].id) == 100
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(StockMovement).where(StockMovement.kind == "redemption")
        )
        == 0
    )
    sound()


def test_the_monthly_limit_counts_this_months_redemptions(client, w):
    assert post(client, w, basket(w, ("rice", 2))).status_code == 201
    refused = post(client, w, basket(w, ("rice", 1)))
    assert refused.status_code == 422 and refused.get_json()["code"] == "monthly_limit"
    assert "本月还可兑 0袋" in refused.get_json()["detail"]


def test_a_double_click_redeems_once_and_shows_the_first_receipt(client, w):
    first = post(client, w, basket(w, ("oil", 1)), key="basket-7")
    second = post(client, w, basket(w, ("oil", 1)), key="basket-7")
    assert first.status_code == second.status_code == 201 and first.get_json() == second.get_json()
    assert stock(w.items["oil"]) == 4 and ledger.balance(db.session, w.users["resident"].id) == 90
    other = post(client, w, basket(w, ("oil", 2)), key="basket-7")
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"


def test_a_retry_after_the_response_was_lost_is_answered_from_the_ledger(w):
    """Even without the stored HTTP response, the service itself never redeems a key twice."""
    lines = [redemption.Line(w.items["oil"].id, 1)]
    args = dict(
        actor=w.users["clerk"], store_id=w.stores["s1"].id, lines=lines, key="k", resident_id=w.users["resident"].id
    )
    one = redemption.redeem(now=utcnow(), **args)
    two = redemption.redeem(now=utcnow(), **args)
    assert one.id == two.id and stock(w.items["oil"]) == 4


def test_bad_baskets_are_clear_422s(client, w):
    cases = [
        ({"resident_id": w.users["resident"].id, "lines": []}, "lines"),
        ({"resident_id": w.users["resident"].id, "lines": [{"item_id": w.items["oil"].id, "qty": 0}]}, "lines.0.qty"),
        ({"lines": [{"item_id": w.items["oil"].id, "qty": 1}]}, "code"),
        ({"resident_id": w.users["resident"].id, "lines": [{"item_id": w.items["soap"].id, "qty": 1}]}, "lines"),
        ({"code": "MC1.1.1.AAAA", "lines": [{"item_id": w.items["oil"].id, "qty": 1}]}, None),
    ]
    for body, field in cases:
        response = post(client, w, body)
        assert response.status_code == 422, body
        if field:
            assert field in response.get_json()["errors"], (body, response.get_json())
    expired = basket(w, ("oil", 1))
    expired.pop("resident_id")
    expired["code"] = accounts.personal_code(w.users["resident"], utcnow() - timedelta(minutes=5))[0]
    assert post(client, w, expired).get_json()["code"] == "code_expired"
    sound()


def test_a_clerk_voids_the_same_day_and_an_admin_later(client, w):
    made = post(client, w, basket(w, ("oil", 2))).get_json()
    void = client.post(
        f"/api/v1/redemptions/{made['id']}/void",
        json={"reason": "拿错了", "code": code_of(w)},
        headers=f.bearer(w.users["clerk"]),
    )
    assert void.status_code == 200 and void.get_json()["status"] == "voided"
    assert stock(w.items["oil"]) == 5 and ledger.balance(db.session, w.users["resident"].id) == 100
    kinds = [e.kind for e in archive.entries(db.session, w.users["resident"].id)]
    assert kinds[-2:] == ["redemption", "void"]
    again = client.post(
        f"/api/v1/redemptions/{made['id']}/void",
        json={"reason": "x", "code": code_of(w)},
        headers=f.bearer(w.users["clerk"]),
    )
    assert again.status_code == 409
    yesterday = redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["oil"].id, 1)],
        key="old",
        resident_id=w.users["resident"].id,
        now=utcnow() - timedelta(days=2),
    )
    late = client.post(
        f"/api/v1/redemptions/{yesterday.id}/void",
        json={"reason": "x", "code": code_of(w)},
        headers=f.bearer(w.users["clerk"]),
    )
    assert late.status_code == 403 and late.get_json()["code"] == "void_too_late"
    by_admin = client.post(
        f"/api/v1/redemptions/{yesterday.id}/void",
        json={"reason": "居民投诉，核实后撤销"},
        headers=f.bearer(w.users["admin"]),
    )
    assert by_admin.status_code == 200
    sound()


def test_stock_moves_only_through_movements(client, w):
    headers = f.bearer(w.users["clerk"])
    url = f"/api/v1/items/{w.items['oil'].id}/stock"
    assert client.post(url, json={"delta": 3, "reason": "purchase"}, headers=headers).get_json()["stock"] == 8
    no_donor = client.post(url, json={"delta": 3, "reason": "donation"}, headers=headers)
    assert no_donor.status_code == 422 and "donor" in no_donor.get_json()["errors"]
    gift = client.post(url, json={"delta": 2, "reason": "donation", "donor": "县爱心协会"}, headers=headers)
    assert gift.get_json()["stock"] == 10
    counted = client.post(url, json={"reason": "stocktake", "counted": 7, "note": "月底盘点"}, headers=headers)
    assert counted.get_json()["stock"] == 7
    below = client.post(url, json={"delta": -8, "reason": "stocktake"}, headers=headers)
    assert below.status_code == 422 and below.get_json()["code"] == "out_of_stock"
    negative_purchase = client.post(url, json={"delta": -1, "reason": "purchase"}, headers=headers)
    assert negative_purchase.status_code == 422
    assert client.post(url, json={"reason": "theft"}, headers=headers).status_code == 422
    kinds = db.session.scalars(
        sa.select(StockMovement.kind).where(StockMovement.item_id == w.items["oil"].id).order_by(StockMovement.id)
    ).all()
    assert kinds == ["purchase", "purchase", "donation", "stocktake"]
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE stock_movement SET delta = 100"))
    with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE item SET stock = -1"))
    sound()


def test_the_days_list_has_totals(client, w):
    post(client, w, basket(w, ("oil", 1)))
    made = post(client, w, basket(w, ("rice", 2))).get_json()
    client.post(
        f"/api/v1/redemptions/{made['id']}/void",
        json={"reason": "x", "code": code_of(w)},
        headers=f.bearer(w.users["clerk"]),
    )
    listing = client.get(f"/api/v1/stores/{w.stores['s1'].id}/redemptions", headers=f.bearer(w.users["clerk"]))
    body = listing.get_json()
    assert body["total"] == 2 and body["totals"] == {"redemptions": 1, "points": 10, "goods": 1, "voids": 1}


def test_finding_a_resident_by_code_or_name_and_phone_tail(client, w):
    headers = f.bearer(w.users["clerk"])
    url = f"/api/v1/stores/{w.stores['s1'].id}/residents"
    code = accounts.personal_code(w.users["resident"], utcnow())[0]
    [found] = client.get(url, query_string={"code": code}, headers=headers).get_json()
    assert found["name"] == "张小明" and found["balance"] == 100 and "****" in found["phone"]
    by_name = client.get(
        url, query_string={"name": "张小明", "phone_tail": w.users["resident"].phone[-4:]}, headers=headers
    ).get_json()
    assert [p["id"] for p in by_name] == [w.users["resident"].id]
    assert client.get(url, headers=headers).status_code == 422


def test_low_stock_is_announced_to_the_clerks_once_a_day(w):
    redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["oil"].id, 1)],
        key="x",
        resident_id=w.users["resident"].id,
        now=utcnow(),
    )
    run_job("low-stock")
    run_job("low-stock")
    notes = db.session.scalars(sa.select(Notification).where(Notification.kind == "low_stock")).all()
    assert [(n.user_id, "食用油" in n.body) for n in notes] == [(w.users["clerk"].id, True)]
    run_job("deliver-notifications")
    fresh()
    assert db.session.scalars(sa.select(Notification.sent_at)).all()[0] is not None
