"""A page's form that a service refuses, or that holds a date the page cannot read, shows the page
again with the reason and a 4xx; nothing is written. A ValueError where the page expects none is
a bug, and is not hidden as a message."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import get_flashed_messages

from core.db import db
from core.errors import Conflict
from core.pages import refusals
from points.models import Certificate, Deed
from tests.authz import build_world, csrf_token, sign_in_page
from volunteer.models import Activity


@pytest.fixture
def w(app):
    return build_world()  # the deed catalogue comes with the migrations


def _post(app, who, path, form):
    page = app.test_client()
    sign_in_page(page, who)
    answer = page.post(path, data={"csrf_token": csrf_token(page), **form})
    return answer.status_code, answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("actor", "path", "form", "message"),
    [
        ("resident", "/my/certificates", {"from": "2026-13-01", "to": "2026-12-31"}, "请选择正确的起止日期"),
        (
            "grid_worker",
            "/deeds/new",
            {"resident_id": "RESIDENT", "deed_type": "haorenhaoshi", "description": "扶老人", "occurred_on": "昨天"},
            "请选择正确的发生日期",
        ),
        (
            "organizer",
            "/organizer/activities/new",
            {"title": "巡逻", "category": "平安巡逻", "address": "村口", "starts_at": "明天", "department_id": "D1"},
            "请填写正确的时间",
        ),
    ],
    ids=["certificate period", "deed date", "activity time"],
)
def test_an_unreadable_date_is_a_422_with_the_reason_and_writes_nothing(app, w, actor, path, form, message):
    form = {
        k: {"RESIDENT": str(w.users["resident"].id), "D1": str(w.departments["d1"].id)}.get(v, v)
        for k, v in form.items()
    }
    status, html = _post(app, w.users[actor], path, form)
    assert status == 422 and message in html
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Activity)) == 0


def test_a_refused_deed_shows_the_form_again_with_the_services_reason(app, w):
    form = {"resident_id": str(w.users["resident"].id), "deed_type": "no-such-type", "description": "扶老人"}
    status, html = _post(app, w.users["grid_worker"], "/deeds/new", form)
    assert status == 422 and "记录好人好事" in html and "找不到该事迹类型" in html
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


def test_refusals_flash_a_domain_error_and_keep_its_status(app):
    with app.test_request_context("/"):
        with refusals() as refused:
            raise Conflict("conflict")
        assert refused.status == 409 and get_flashed_messages() == ["当前状态不允许此操作"]


def test_refusals_do_not_hide_a_value_error_the_page_did_not_expect(app):
    with app.test_request_context("/"), pytest.raises(ValueError, match="a bug"), refusals():
        raise ValueError("a bug")
