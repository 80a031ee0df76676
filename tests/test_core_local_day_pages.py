"""Pages default to the local day, not the UTC date: between 00:00 and 08:00 in Beijing the UTC date
is still yesterday, yet a grid worker recording a deed at 01:30 means today, and a certificate asked
for then covers today's hours."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from core import clock
from core.db import db
from points.models import Deed
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh

# 01:30 on 5 January 2027 in Asia/Shanghai, still the 4th in UTC; unlike the machine's own clock.
EARLY = datetime(2027, 1, 4, 17, 30, tzinfo=UTC)
LOCAL_TODAY = date(2027, 1, 5)


@pytest.fixture
def w(app):
    return build_world()


@pytest.fixture
def early_morning(monkeypatch):
    monkeypatch.setattr(clock, "utcnow", lambda: EARLY)
    assert clock.today() == LOCAL_TODAY


def signed_in(app, who):
    client = app.test_client()
    sign_in_page(client, who)
    return client


def test_at_half_past_one_the_deed_form_offers_todays_local_date(app, w, early_morning):
    html = signed_in(app, w.users["grid_worker"]).get("/deeds/new").get_data(as_text=True)
    assert f'value="{LOCAL_TODAY}" max="{LOCAL_TODAY}"' in html


@pytest.mark.parametrize("occurred_on", [LOCAL_TODAY.isoformat(), ""], ids=["typed", "default"])
def test_at_half_past_one_the_deed_form_accepts_todays_local_date(app, w, early_morning, occurred_on):
    page = signed_in(app, w.users["grid_worker"])
    form = {
        "csrf_token": csrf_token(page),
        "resident_id": str(w.users["resident"].id),
        "deed_type": "haorenhaoshi",
        "description": "凌晨帮邻居送医",
        "occurred_on": occurred_on,
    }
    answer = page.post("/deeds/new", data=form)
    assert answer.status_code == 302
    fresh()
    deed = db.session.scalar(sa.select(Deed))
    assert deed.occurred_on == LOCAL_TODAY


def test_at_half_past_one_a_certificate_defaults_to_a_period_ending_today(app, w, early_morning):
    html = signed_in(app, w.users["resident"]).get("/my/certificates").get_data(as_text=True)
    assert f'name="from" value="{date(2027, 1, 1)}"' in html
    assert f'name="to" value="{LOCAL_TODAY}"' in html


def test_at_half_past_one_the_stores_daily_report_shows_the_local_day(app, w, early_morning):
    page = signed_in(app, w.users["clerk"])
    html = page.get(f"/stores/{w.stores['s1'].id}/report").get_data(as_text=True)
    assert f'name="date" value="{LOCAL_TODAY}"' in html
    listed = page.get(f"/api/v1/stores/{w.stores['s1'].id}/redemptions").get_json()
    assert listed["date"] == LOCAL_TODAY.isoformat()


def test_the_low_stock_notice_is_once_a_local_day_not_once_a_utc_day(app, w):
    from core.notify import Notification
    from exchange import jobs

    assert w.items["oil"].stock <= w.items["oil"].low_stock_threshold
    jobs.low_stock(now=datetime(2027, 1, 4, 0, 0, tzinfo=UTC))  # 08:00 on the 4th in Beijing
    jobs.low_stock(now=EARLY)  # 01:30 on the 5th in Beijing: a new day, though UTC still says the 4th
    fresh()
    days = db.session.scalars(sa.select(Notification.key).where(Notification.kind == "low_stock")).all()
    assert len(days) == 2
