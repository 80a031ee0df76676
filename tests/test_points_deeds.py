"""Deeds: recorded by a grid worker, reviewed by someone else, on public notice, then posted."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db import db, utcnow
from core.errors import Conflict, Forbidden, NotFound
from core.jobs import run_job
from points import archive, deeds, ledger
from points.models import Deed
from tests import factories as f
from tests.authz import build_world


@pytest.fixture
def world(app):
    deeds.ensure_default_types()
    return build_world()


def record(w, kind="haorenhaoshi", who="resident", now=None):
    return deeds.record(
        actor=w.users["grid_worker"],
        resident_id=w.users[who].id,
        deed_type=kind,
        description="帮邻居抢收稻谷",
        occurred_on=utcnow().date(),
        now=now or utcnow(),
    )


def status(deed_id: int) -> str:
    db.session.rollback()
    return db.session.get(Deed, deed_id).status


def test_a_deed_goes_pending_then_on_notice_then_posted(client, world):
    created = client.post(
        "/api/v1/deeds",
        headers=f.bearer(world.users["grid_worker"]),
        json={
            "resident_id": world.users["resident"].id,
            "deed_type": "haorenhaoshi",
            "description": "扶老人过马路",
            "occurred_on": utcnow().date().isoformat(),
        },
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["status"] == "pending" and body["points"] == 10
    approved = client.post(f"/api/v1/deeds/{body['id']}/approve", headers=f.bearer(world.users["reviewer"]), json={})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert approved.get_json()["notice_until"]

    # During the notice nothing moves, even if the job runs.
    run_job("post-deeds")
    assert status(body["id"]) == "approved" and ledger.balance(db.session, world.users["resident"].id) == 0
    # After three days the job posts it once, however often it runs.
    later = utcnow() + timedelta(days=3, minutes=1)
    assert deeds.post_due(now=later) == 1
    assert deeds.post_due(now=later) == 0
    assert status(body["id"]) == "posted"
    [entry] = archive.entries(db.session, world.users["resident"].id)
    assert (entry.kind, entry.points) == ("deed", 10) and "好人好事" in entry.summary
    assert ledger.invariant_problems(db.session) == []


def test_a_deed_voided_during_notice_never_posts(world):
    deed = record(world)
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    with pytest.raises(Exception) as missing:
        deeds.void(actor=world.users["reviewer"], deed_id=deed.id, reason="", now=utcnow())
    assert missing.value.code == "reason_required"
    deeds.void(actor=world.users["reviewer"], deed_id=deed.id, reason="经核实不属实", now=utcnow())
    assert deeds.post_due(now=utcnow() + timedelta(days=10)) == 0
    assert status(deed.id) == "voided"
    assert archive.entries(db.session, world.users["resident"].id) == []


def test_the_recorder_never_approves_their_own_deed(world):
    both = f.grant(
        f.grant(f.user("43010101", name="兼职"), "grid_worker", "region", "4301010101"), "reviewer", "region", "430101"
    )
    deed = deeds.record(
        actor=both,
        resident_id=world.users["resident"].id,
        deed_type="haorenhaoshi",
        description="x",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )
    with pytest.raises(Forbidden) as refused:
        deeds.approve(actor=both, deed_id=deed.id, now=utcnow())
    assert refused.value.code == "same_person"


def test_a_deed_is_reviewed_once(world):
    deed = record(world)
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    with pytest.raises(Conflict):
        deeds.reject(actor=world.users["admin"], deed_id=deed.id, now=utcnow())


def test_a_reviewer_outside_the_region_cannot_see_the_deed(world):
    deed = record(world)
    other = f.grant(f.user("430102", name="外镇审核"), "reviewer", "region", "430102")
    with pytest.raises(NotFound):
        deeds.approve(actor=other, deed_id=deed.id, now=utcnow())


def test_a_grid_worker_records_only_for_their_own_grid(client, world):
    response = client.post(
        "/api/v1/deeds",
        headers=f.bearer(world.users["grid_worker"]),
        json={
            "resident_id": world.users["stranger"].id,
            "deed_type": "haorenhaoshi",
            "description": "x",
            "occurred_on": utcnow().date().isoformat(),
        },
    )
    assert response.status_code == 403
    bad = client.post(
        "/api/v1/deeds",
        headers=f.bearer(world.users["grid_worker"]),
        json={
            "resident_id": world.users["resident"].id,
            "deed_type": "nope",
            "description": "",
            "occurred_on": "2026-13-01",
        },
    )
    assert bad.status_code == 422 and {"description", "occurred_on"} <= set(bad.get_json()["errors"])


def test_a_deduction_larger_than_the_balance_takes_the_balance_and_records_the_rest(world):
    resident = world.users["resident"]
    f.fund(resident, 3)
    deed = record(world, kind="weiguiranfang")  # -10
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    deeds.post_due(now=utcnow() + timedelta(days=4))
    assert ledger.balance(db.session, resident.id) == 0
    [entry] = archive.entries(db.session, resident.id)
    assert entry.kind == "deduction" and entry.points == -3
    assert entry.details["unpaid"] == 7 and "未扣 7 分" in entry.summary
    assert ledger.invariant_problems(db.session) == []


def test_the_public_notice_masks_names_without_consent_and_takes_objections(client, world):
    consenting = f.user("4301010101", name="李乐意", consent_public_name=True)
    for who in ("resident", None):
        deed = deeds.record(
            actor=world.users["grid_worker"],
            resident_id=consenting.id if who is None else world.users[who].id,
            deed_type="haorenhaoshi",
            description="好事",
            occurred_on=utcnow().date(),
            now=utcnow(),
        )
        deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    page = client.get("/notices").get_data(as_text=True)
    assert "张**" in page and "张小明" not in page  # no consent: masked
    assert "李乐意" in page
    assert world.users["resident"].phone not in page
    objection = client.post(
        f"/api/v1/deeds/{deed.id}/objections", headers=f.bearer(world.users["stranger"]), json={"text": "不属实"}
    )
    assert objection.status_code == 201
    db.session.rollback()
    assert [o.text for o in db.session.get(Deed, deed.id).objections] == ["不属实"]


def test_deed_types_are_listed_with_negative_points_for_deductions(client, world):
    body = client.get("/api/v1/deed-types?per_page=100").get_json()
    points = {t["code"]: t["points"] for t in body["items"]}
    assert points["jianyiyongwei"] == 50 and points["luanrenglaji"] == -5
    assert body["total"] == len(deeds.DEFAULT_TYPES)


def test_posting_twice_at_once_posts_once(app, world):
    from tests.test_core_concurrency import run_threads

    deed = record(world)
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    later = utcnow() + timedelta(days=4)
    deed_id = deed.id  # threads get ids, never another session's objects
    run_threads(app, 4, lambda i: deeds.post(deed_id, now=later))

    db.session.rollback()
    assert len(archive.entries(db.session, world.users["resident"].id)) == 1
    assert ledger.balance(db.session, world.users["resident"].id) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed).where(Deed.status == "posted")) == 1
