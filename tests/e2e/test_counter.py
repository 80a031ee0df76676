"""The counter page, driven as a clerk would: a wedge scanner types the code, goods are tapped,
confirm is double-clicked, and exactly one receipt (one redemption) results."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from community import accounts
from core.db import db, utcnow
from exchange import stores
from exchange.models import Item, Redemption
from points import ledger
from tests import factories as f
from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e


def test_scan_pick_double_click_confirm_one_receipt(live, phone_page):
    with live.app.app_context():
        f.region("6301", "桃江县", "county")
        f.region("630101", "灰山港镇", "township", "6301")
        store = stores.create_store(actor=None, name="枫树村道德超市", region_code="630101", now=utcnow())
        oil = stores.add_item(
            actor=None,
            store_id=store.id,
            name="食用油",
            unit="桶",
            points_price=30,
            stock=5,
            picture=f.picture(320, 320, "PNG"),
            now=utcnow(),
        )
        soap = stores.add_item(
            actor=None, store_id=store.id, name="香皂", unit="块", points_price=5, stock=20, now=utcnow()
        )
        f.grant(f.user("630101", name="刘店员", phone="13912350001"), "clerk", "store", store.id)
        resident = f.user("630101", name="赵大爷", phone="13912350002")
        f.fund(resident, 100)
        code, _ = accounts.personal_code(resident, utcnow())
        store_id, oil_id, soap_id, resident_id = store.id, oil.id, soap.id, resident.id

    page = phone_page
    page.goto(live.url + "/login")
    page.fill("#phone", "13912350001")
    page.fill("#password", f.PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")
    page.goto(f"{live.url}/stores/{store_id}/counter")

    page.locator("#scan").type(code + "\n", delay=5)  # a keyboard-wedge scanner types, then Enter
    page.wait_for_selector("#resident:not([hidden])")
    assert "赵大爷" in page.inner_text("#resident") and "积分余额 100" in page.inner_text("#resident")
    page.click(f'.good[data-id="{oil_id}"]')
    page.click(f'.good[data-id="{soap_id}"]')
    page.click(f'.good[data-id="{soap_id}"]')
    assert page.inner_text("#total") == "40" and page.inner_text("#after") == "60"
    # The tile of the item with a picture shows it, loaded (natural width > 0).
    assert page.eval_on_selector(f'.good[data-id="{oil_id}"] img.item-pic', "img => img.naturalWidth") > 0
    screenshot(page, "counter-basket")

    page.dblclick("#confirm-btn")
    page.wait_for_selector("#receipt:not([hidden])")
    assert "兑换成功" in page.inner_text("#receipt") and "余额 60 分" in page.inner_text("#receipt")
    screenshot(page, "counter-receipt")

    with live.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Redemption)) == 1
        assert ledger.balance(db.session, resident_id) == 60
        assert db.session.get(Item, oil_id).stock == 4 and db.session.get(Item, soap_id).stock == 18

    with page.expect_popup() as popup:
        page.get_by_role("link", name="打印小票").click()
    receipt = popup.value
    receipt.wait_for_load_state()
    assert "合计 40 分" in receipt.inner_text("main")
    screenshot(receipt, "receipt-print")
