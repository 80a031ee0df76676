"""Editing activities: drafts freely; a published activity's new time or place is told to its
volunteers in the same unit of work and audited; settled fields stay refused once anyone checked
in; the organizer's edit page; lists show the year of dates outside this year."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from community import accounts
from core.audit import AuditEntry
from core.db import db, utcnow
from core.notify import Notification
from tests import factories as f
from tests.authz import World, build_world, csrf_token, sign_in_page
from tests.factories import fresh
from tests.volunteer_helpers import make_activity
from volunteer import attendance, signups
from volunteer.models import Activity

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def w(app) -> World:
    return build_world()


def patch(client, who, activity_id: int, **body):
    return client.patch(f"/api/v1/activities/{activity_id}", json=body, headers=f.bearer(who))


def notices() -> list[Notification]:
    fresh()
    return db.session.scalars(
        sa.select(Notification).where(Notification.kind == "activity").order_by(Notification.id)
    ).all()


def later(activity: Activity, hours: int) -> dict:
    start = activity.starts_at + timedelta(hours=hours)
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat()}


def test_a_draft_is_edited_freely_and_audited(client, w):
    draft = make_activity(w, start_in=timedelta(days=2), publish=False)
    response = patch(
        client, w.users["organizer"], draft.id, title="周末河道清理", address="村委会门口", **later(draft, 3)
    )
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["title"], response.get_json()["address"]) == ("周末河道清理", "村委会门口")
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "activity.update"))
    assert entry.before["title"] == "河道垃圾清理" and entry.after["title"] == "周末河道清理"
    assert notices() == []


def test_a_published_activitys_new_time_or_place_is_told_to_everyone_signed_up(client, w):
    activity = make_activity(w, start_in=timedelta(days=2), capacity=1, requires_approval=False)
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())  # confirmed
    signups.sign_up(user=w.users["target"], activity_id=activity.id, now=utcnow())  # waitlisted
    signups.sign_up(user=w.users["stranger"], activity_id=activity.id, now=utcnow())
    signups.cancel(user=w.users["stranger"], activity_id=activity.id, now=utcnow())  # gone: not told
    organizer = w.users["organizer"]

    assert patch(client, organizer, activity.id, title="河道清理（加强版）").status_code == 200
    assert notices() == []  # a new title is not a new time or place

    new_times = later(activity, 24)
    moved = patch(client, organizer, activity.id, **new_times)
    assert moved.status_code == 200
    told = notices()
    assert sorted(n.user_id for n in told) == sorted([w.users["resident"].id, w.users["target"].id])
    start = datetime.fromisoformat(new_times["starts_at"]).astimezone(SHANGHAI)
    assert all(n.title == "活动变更" for n in told)
    assert f"时间改为 {start.year}年{start.month}月{start.day}日 {start:%H:%M}" in told[0].body
    assert "河道清理（加强版）" in told[0].body

    assert patch(client, organizer, activity.id, address="村委会门口").status_code == 200
    told = notices()
    assert len(told) == 4  # each change is told once more, to both
    assert "地点改为 村委会门口" in told[-1].body and "时间改为" not in told[-1].body
    audits = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action == "activity.update")).all()
    assert len(audits) == 3


def test_a_refused_edit_tells_nobody(client, w):
    activity = make_activity(w, start_in=timedelta(days=2))
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    start = activity.starts_at + timedelta(days=1)
    bad = patch(client, w.users["organizer"], activity.id, starts_at=start.isoformat())  # after its end
    assert bad.status_code == 422
    assert notices() == []


def test_once_anyone_checked_in_time_stays_refused_but_a_new_place_is_told(client, w):
    activity = make_activity(w)  # running now
    volunteer = w.users["resident"]
    signups.sign_up(user=volunteer, activity_id=activity.id, now=utcnow())
    code = accounts.personal_code(volunteer, utcnow())[0]
    attendance.scan_personal_code(organizer=w.users["organizer"], activity_id=activity.id, code=code, now=utcnow())
    refused = patch(client, w.users["organizer"], activity.id, **later(activity, 1))
    assert refused.status_code == 409 and refused.get_json()["code"] == "activity_settled"
    assert refused.get_json()["errors"].keys() == {"starts_at", "ends_at"}
    assert patch(client, w.users["organizer"], activity.id, points_per_hour=50).status_code == 409
    assert notices() == []
    assert patch(client, w.users["organizer"], activity.id, address="改到村委会").status_code == 200
    assert [n.user_id for n in notices()] == [volunteer.id]


def test_an_organizer_of_another_department_cannot_even_see_it(client, w):
    activity = make_activity(w, start_in=timedelta(days=2))
    other = f.grant(f.user("430102", name="孔组织"), "organizer", "department", w.departments["d2"].id)
    assert patch(client, other, activity.id, title="改掉").status_code == 404
    sign_in_page(client, other)
    assert client.get(f"/organizer/activities/{activity.id}/edit").status_code == 404


def test_the_edit_page_moves_a_published_activity_and_says_volunteers_were_told(client, w):
    activity = make_activity(w, start_in=timedelta(days=2))
    signups.sign_up(user=w.users["resident"], activity_id=activity.id, now=utcnow())
    sign_in_page(client, w.users["organizer"])
    page = client.get(f"/organizer/activities/{activity.id}/edit").get_data(as_text=True)
    local_start = activity.starts_at.astimezone(SHANGHAI)
    assert f'value="{local_start:%Y-%m-%dT%H:%M}"' in page and "已报名、候补和待审核的志愿者都会收到通知" in page
    new_start = (local_start + timedelta(days=1)).replace(second=0, microsecond=0)
    form = {
        "csrf_token": csrf_token(client),
        "title": activity.title,
        "category": activity.category,
        "address": activity.address,
        "starts_at": f"{new_start:%Y-%m-%dT%H:%M}",
        "ends_at": f"{new_start + timedelta(hours=2):%Y-%m-%dT%H:%M}",
        "description": activity.description,
    }
    saved = client.post(f"/organizer/activities/{activity.id}/edit", data=form)
    assert saved.status_code == 302
    manage = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "已保存修改，已通知报名的志愿者" in manage
    fresh()
    assert db.session.get(Activity, activity.id).starts_at == new_start
    assert len(notices()) == 1
    bad = client.post(
        f"/organizer/activities/{activity.id}/edit", data={**form, "csrf_token": csrf_token(client), "starts_at": "x"}
    )
    assert bad.status_code == 422 and "请填写正确的时间" in bad.get_data(as_text=True)


def test_resaving_the_form_unchanged_changes_nothing_even_after_check_ins(client, w):
    # Made through the API with seconds in its times; the form shows minutes.
    activity = make_activity(w, start_in=timedelta(minutes=-30, seconds=17))
    volunteer = w.users["resident"]
    signups.sign_up(user=volunteer, activity_id=activity.id, now=utcnow())
    code = accounts.personal_code(volunteer, utcnow())[0]
    attendance.scan_personal_code(organizer=w.users["organizer"], activity_id=activity.id, code=code, now=utcnow())
    sign_in_page(client, w.users["organizer"])
    local = {k: getattr(activity, k).astimezone(SHANGHAI) for k in ("starts_at", "ends_at")}
    form = {
        "csrf_token": csrf_token(client),
        "title": activity.title,
        "category": activity.category,
        "address": activity.address,
        "starts_at": f"{local['starts_at']:%Y-%m-%dT%H:%M}",
        "ends_at": f"{local['ends_at']:%Y-%m-%dT%H:%M}",
        "description": activity.description,
    }
    saved = client.post(f"/organizer/activities/{activity.id}/edit", data=form)
    assert saved.status_code == 302
    assert "没有修改" in client.get(saved.headers["Location"]).get_data(as_text=True)


def test_publishing_from_the_management_page_says_it_is_published(client, w):
    draft = make_activity(w, start_in=timedelta(days=2), publish=False)
    sign_in_page(client, w.users["organizer"])
    done = client.post(
        f"/organizer/activities/{draft.id}", data={"csrf_token": csrf_token(client), "action": "publish"}
    )
    assert done.status_code == 302
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已发布，志愿者现在可以报名" in page


def test_lists_show_the_year_of_dates_outside_this_year(client, w):
    this_year = datetime.now(SHANGHAI).year
    next_year = datetime(this_year + 1, 1, 3, 9, 0, tzinfo=SHANGHAI)
    far = make_activity(w, start_in=next_year - utcnow().replace(microsecond=0), title="新年慰问")
    near = make_activity(w, start_in=timedelta(hours=2), title="今天的巡逻")
    near_start = near.starts_at.astimezone(SHANGHAI)
    near_text = f"{near_start.month}月{near_start.day}日 {near_start:%H:%M}"
    if near_start.year != this_year:  # the last hours of the year: it is next year's too
        near_text = f"{near_start.year}年{near_text}"
    listing = client.get("/activities").get_data(as_text=True)
    assert f"{this_year + 1}年1月3日 09:00–11:00" in listing
    assert near_text in listing
    sign_in_page(client, w.users["organizer"])
    dashboard = client.get("/organizer/").get_data(as_text=True)
    assert f"{this_year + 1}年1月3日 09:00" in dashboard
    detail = client.get(f"/activities/{far.id}").get_data(as_text=True)
    assert f"{this_year + 1}年1月3日 09:00–11:00" in detail
