"""The moral supermarket's integrity rules (issues 9 and 14): a stock receipt applies once per key,
the clerk's lookup and bare ids reach only the residents the store serves, nobody redeems for
themselves, redemptions for clerks are flagged, and a clerk's void needs the resident's code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from community import accounts
from community.models import Household, User
from core.audit import AuditEntry
from core.db import db, unit_of_work, utcnow
from core.errors import Conflict
from exchange import inventory, redemption, stores
from exchange.models import Item, Redemption, StockMovement
from points import ledger
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.test_core_concurrency import run_threads


@pytest.fixture
def w(app):
    world = build_world()
    f.fund(world.users["resident"], 100)
    f.fund(world.users["stranger"], 100)
    return world


def code_of(w, who: str) -> str:
    return accounts.personal_code(w.users[who], utcnow())[0]


def oil_stock(w) -> int:
    fresh()
    return db.session.get(Item, w.items["oil"].id).stock


def count(model, *where) -> int:
    fresh()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def redeem(client, w, body: dict, clerk: str = "clerk", key: str | None = None):
    headers = f.bearer(w.users[clerk])
    if key:
        headers["Idempotency-Key"] = key
    return client.post(f"/api/v1/stores/{w.stores['s1'].id}/redemptions", json=body, headers=headers)


def basket(w, qty: int = 1, **who) -> dict:
    return {**who, "lines": [{"item_id": w.items["oil"].id, "qty": qty}]}


def void(client, w, redemption_id: int, who: str = "clerk", **extra):
    return client.post(
        f"/api/v1/redemptions/{redemption_id}/void", json={"reason": "拿错了", **extra}, headers=f.bearer(w.users[who])
    )


def sound() -> None:
    fresh()
    assert ledger.invariant_problems(db.session) == []
    assert inventory.invariant_problems(db.session) == []


def signed_in(app, who: User):
    client = app.test_client()
    sign_in_page(client, who)
    return client


# A. A stock receipt applies once per Idempotency-Key --------------------------------------------


def test_eight_concurrent_stock_receipts_under_one_key_apply_once(app, w):
    token = f.token(w.users["clerk"])
    item_id = w.items["oil"].id

    def receive(i: int):
        return app.test_client().post(
            f"/api/v1/items/{item_id}/stock",
            json={"delta": 3, "reason": "purchase"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "delivery-42"},
        )

    responses = run_threads(app, 8, receive)
    assert [r.status_code for r in responses] == [200] * 8
    assert {r.get_json()["stock"] for r in responses} == {8}
    assert oil_stock(w) == 8
    assert count(StockMovement, StockMovement.item_id == item_id, StockMovement.kind == "purchase") == 2  # + initial
    sound()


def test_a_stock_key_applies_once_even_without_the_stored_response(w):
    """The service itself decides: the key lives on the movement, not only in the replay cache."""
    args = dict(actor=w.users["clerk"], item_id=w.items["oil"].id, reason="donation", donor="县爱心协会", key="k1")
    first = stores.receive(delta=4, now=utcnow(), **args)
    again = stores.receive(delta=4, now=utcnow(), **args)
    assert first.stock == again.stock == 9 and oil_stock(w) == 9
    with pytest.raises(Conflict) as conflict:
        stores.receive(delta=5, now=utcnow(), **args)
    assert conflict.value.code == "idempotency_conflict"
    assert oil_stock(w) == 9
    sound()


def test_a_repeated_stock_key_returns_the_first_result_and_another_body_is_a_conflict(client, w):
    headers = {**f.bearer(w.users["clerk"]), "Idempotency-Key": "count-1"}
    url = f"/api/v1/items/{w.items['oil'].id}/stock"
    first = client.post(url, json={"reason": "stocktake", "counted": 3}, headers=headers)
    second = client.post(url, json={"reason": "stocktake", "counted": 3}, headers=headers)
    assert first.status_code == second.status_code == 200 and first.get_json() == second.get_json()
    other = client.post(url, json={"reason": "stocktake", "counted": 4}, headers=headers)
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"
    assert oil_stock(w) == 3


def goods_form_key(client, store_id: int) -> str:
    html = client.get(f"/stores/{store_id}/goods").get_data(as_text=True)
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the goods page's stock form carries a per-render key"
    return match.group(1)


def test_a_double_submit_of_the_goods_form_receives_stock_once(app, w):
    client = signed_in(app, w.users["clerk"])
    store_id = w.stores["s1"].id
    key = goods_form_key(client, store_id)
    form = {"item_id": str(w.items["oil"].id), "reason": "purchase", "delta": "2", "idempotency_key": key}
    for _ in range(2):
        response = client.post(f"/stores/{store_id}/goods", data={**form, "csrf_token": csrf_token(client)})
        assert response.status_code == 302
    assert oil_stock(w) == 7
    # A new render is a new receipt: the clerk meant it.
    again = {**form, "idempotency_key": goods_form_key(client, store_id), "csrf_token": csrf_token(client)}
    client.post(f"/stores/{store_id}/goods", data=again)
    assert oil_stock(w) == 9
    sound()


# B. The clerk's lookup reaches only the residents the store serves ------------------------------


def lookup(client, w, **query):
    return client.get(
        f"/api/v1/stores/{w.stores['s1'].id}/residents", query_string=query, headers=f.bearer(w.users["clerk"])
    )


def test_a_name_search_finds_only_residents_the_store_serves(client, w):
    stranger = w.users["stranger"]  # another township
    outside = lookup(client, w, name=stranger.name, phone_tail=stranger.phone[-4:])
    assert outside.status_code == 200 and outside.get_json() == []
    mine = lookup(client, w, name="张小明", phone_tail=w.users["resident"].phone[-4:]).get_json()
    assert [p["id"] for p in mine] == [w.users["resident"].id]


def test_a_personal_code_finds_a_resident_from_anywhere(client, w):
    [found] = lookup(client, w, code=code_of(w, "stranger")).get_json()
    assert found["id"] == w.users["stranger"].id and found["balance"] == 100


def test_the_counter_pages_name_search_finds_only_residents_the_store_serves(app, w):
    client = signed_in(app, w.users["clerk"])
    url = f"/stores/{w.stores['s1'].id}/counter"
    stranger, resident = w.users["stranger"], w.users["resident"]
    outside = client.get(url, query_string={"name": stranger.name, "phone_tail": stranger.phone[-4:]})
    assert outside.status_code == 200 and "found-resident" not in outside.get_data(as_text=True)
    mine = client.get(url, query_string={"name": resident.name, "phone_tail": resident.phone[-4:]})
    assert mine.status_code == 200 and 'class="found-resident">张小明' in mine.get_data(as_text=True)
    bad = client.get(url, query_string={"name": "张小明", "phone_tail": "12a"})
    assert bad.status_code == 200 and 'value="12a"' in bad.get_data(as_text=True)


# C. A bare resident id works only for residents the store serves --------------------------------


def test_a_bare_resident_id_outside_the_stores_region_is_refused_and_changes_nothing(client, w):
    for resident_id in (w.users["stranger"].id, 999_999):
        response = redeem(client, w, basket(w, resident_id=resident_id))
        assert response.status_code == 422 and response.get_json()["code"] == "code_required"
    assert oil_stock(w) == 5 and ledger.balance(db.session, w.users["stranger"].id) == 100
    assert count(Redemption) == 0


def test_the_personal_code_redeems_for_a_resident_from_anywhere_and_the_audit_says_how(client, w):
    by_code = redeem(client, w, basket(w, code=code_of(w, "stranger")))
    assert by_code.status_code == 201 and by_code.get_json()["identified_by"] == "code"
    by_id = redeem(client, w, basket(w, resident_id=w.users["resident"].id))
    assert by_id.status_code == 201 and by_id.get_json()["identified_by"] == "lookup"
    fresh()
    audited = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "redemption.create").order_by(AuditEntry.id)
    ).all()
    assert [a.after["identified_by"] for a in audited] == ["code", "lookup"]
    sound()


# D. Separation of duties -------------------------------------------------------------------------


def household_of(*people: User) -> None:
    with unit_of_work() as session:
        home = Household(number="43010101-0001", region_id=people[0].region_id)
        session.add(home)
        session.flush()
        for person in people:
            session.get(User, person.id).household_id = home.id


def test_a_clerk_cannot_redeem_for_themselves_or_their_household(client, w):
    clerk = w.users["clerk"]
    f.fund(clerk, 50)
    w.users["spouse"] = f.user("43010101", name="刘妻")
    f.fund(w.users["spouse"], 50)
    household_of(clerk, w.users["spouse"])
    for body in (
        basket(w, code=code_of(w, "clerk")),
        basket(w, resident_id=clerk.id),
        basket(w, resident_id=w.users["spouse"].id),
    ):
        response = redeem(client, w, body)
        assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
    assert count(Redemption) == 0 and oil_stock(w) == 5


def colleague(w) -> User:
    """A second clerk of the same store, who is also a resident it serves."""
    if "colleague" not in w.users:
        w.users["colleague"] = f.grant(f.user("43010101", name="陈店员"), "clerk", "store", w.stores["s1"].id)
        f.fund(w.users["colleague"], 50)
    return w.users["colleague"]


def test_a_redemption_for_a_clerk_is_flagged_for_review_in_the_list_and_the_day_report(app, client, w):
    mate = colleague(w)
    normal = redeem(client, w, basket(w, resident_id=w.users["resident"].id)).get_json()
    for_clerk = redeem(client, w, basket(w, resident_id=mate.id))
    assert for_clerk.status_code == 201 and for_clerk.get_json()["flagged"] is True and normal["flagged"] is False
    f.fund(w.users["clerk_elsewhere"], 20)
    elsewhere = redeem(client, w, basket(w, code=code_of(w, "clerk_elsewhere")))  # a clerk of another store
    assert elsewhere.get_json()["flagged"] is True
    rows = client.get(f"/api/v1/stores/{w.stores['s1'].id}/redemptions", headers=f.bearer(w.users["admin"])).get_json()[
        "items"
    ]
    assert [(r["id"], r["flagged"]) for r in rows] == [
        (normal["id"], False),
        (for_clerk.get_json()["id"], True),
        (elsewhere.get_json()["id"], True),
    ]
    page = signed_in(app, w.users["admin"]).get(f"/stores/{w.stores['s1'].id}/report").get_data(as_text=True)
    assert page.count('class="small bad flagged"') == 2


def test_a_clerks_void_needs_the_residents_personal_code(client, w):
    made = redeem(client, w, basket(w, 2, resident_id=w.users["resident"].id)).get_json()
    missing = void(client, w, made["id"])
    assert missing.status_code == 422 and missing.get_json()["code"] == "code_required"
    wrong = void(client, w, made["id"], code=code_of(w, "stranger"))
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "code_mismatch"
    stale = accounts.personal_code(w.users["resident"], utcnow() - timedelta(minutes=5))[0]
    expired = void(client, w, made["id"], code=stale)
    assert expired.status_code == 422 and expired.get_json()["code"] == "code_expired"
    assert oil_stock(w) == 3 and ledger.balance(db.session, w.users["resident"].id) == 80
    done = void(client, w, made["id"], code=code_of(w, "resident"))
    assert done.status_code == 200 and done.get_json()["status"] == "voided"
    assert oil_stock(w) == 5 and ledger.balance(db.session, w.users["resident"].id) == 100
    fresh()
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "redemption.void"))
    assert entry.after["confirmed_by"] == "code"
    sound()


def test_an_admin_of_the_stores_region_voids_without_a_code_as_the_second_person(client, w):
    made = redeem(client, w, basket(w, resident_id=w.users["resident"].id)).get_json()
    by_admin = void(client, w, made["id"], who="admin")
    assert by_admin.status_code == 200 and by_admin.get_json()["status"] == "voided"
    # An admin who made the redemption at the counter is not a second person: the code again.
    f.grant(w.users["admin"], "clerk", "store", w.stores["s1"].id)
    own = redeem(client, w, basket(w, resident_id=w.users["resident"].id), clerk="admin").get_json()
    refused = void(client, w, own["id"], who="admin")
    assert refused.status_code == 422 and refused.get_json()["code"] == "code_required"
    assert void(client, w, own["id"], who="admin", code=code_of(w, "resident")).status_code == 200
    sound()


def test_nobody_voids_a_redemption_made_for_themselves(client, w):
    colleague(w)
    f.fund(w.users["clerk"], 50)
    made = redeem(client, w, basket(w, resident_id=w.users["clerk"].id), clerk="colleague")
    assert made.status_code == 201 and made.get_json()["flagged"] is True
    refused = void(client, w, made.get_json()["id"], code=code_of(w, "clerk"))
    assert refused.status_code == 403 and refused.get_json()["code"] == "self_dealing"
    assert db.session.get(Redemption, made.get_json()["id"]).status == "completed"


def test_the_report_pages_void_form_asks_a_clerk_for_the_code(app, w):
    client = signed_in(app, w.users["clerk"])
    made = redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["oil"].id, 1)],
        key="page",
        resident_id=w.users["resident"].id,
        now=utcnow(),
    ).id
    page = client.get(f"/stores/{w.stores['s1'].id}/report").get_data(as_text=True)
    assert 'name="code"' in page
    url = f"/stores/{w.stores['s1'].id}/redemptions/{made}/void"
    refused = client.post(url, data={"reason": "拿错了，换一桶", "csrf_token": csrf_token(client)})
    assert refused.status_code == 422 and 'value="拿错了，换一桶"' in refused.get_data(as_text=True)
    assert db.session.get(Redemption, made).status == "completed"
    client.post(url, data={"reason": "拿错了", "code": code_of(w, "stranger"), "csrf_token": csrf_token(client)})
    assert db.session.get(Redemption, made).status == "completed"
    client.post(url, data={"reason": "拿错了", "code": code_of(w, "resident"), "csrf_token": csrf_token(client)})
    fresh()
    assert db.session.get(Redemption, made).status == "voided"


def test_the_report_page_lets_an_admin_void_without_a_code(app, w):
    made = redemption.redeem(
        actor=w.users["clerk"],
        store_id=w.stores["s1"].id,
        lines=[redemption.Line(w.items["oil"].id, 1)],
        key="page",
        resident_id=w.users["resident"].id,
        now=utcnow(),
    ).id
    client = signed_in(app, w.users["admin"])
    assert 'name="code"' not in client.get(f"/stores/{w.stores['s1'].id}/report").get_data(as_text=True)
    client.post(
        f"/stores/{w.stores['s1'].id}/redemptions/{made}/void",
        data={"reason": "居民投诉", "csrf_token": csrf_token(client)},
    )
    fresh()
    assert db.session.get(Redemption, made).status == "voided"


def test_stock_never_grows_past_its_ceiling_however_many_deliveries(client, w):
    oil = w.items["oil"]  # 5 in stock
    url = f"/api/v1/items/{oil.id}/stock"
    first = client.post(url, json={"delta": 999_995, "reason": "purchase"}, headers=f.bearer(w.users["clerk"]))
    assert first.status_code == 200 and first.get_json()["stock"] == 1_000_000
    more = client.post(url, json={"delta": 1, "reason": "purchase"}, headers=f.bearer(w.users["clerk"]))
    assert more.status_code == 422 and more.get_json()["code"] == "stock_too_large"
    assert db.session.get(Item, oil.id, populate_existing=True).stock == 1_000_000
