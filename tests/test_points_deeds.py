"""Deeds: recorded by a grid worker, reviewed by someone else, on public notice, then posted."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.db import db, utcnow
from core.errors import Conflict, Forbidden, NotFound
from core.jobs import run_job
from points import archive, deeds, ledger
from points.models import Deed
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh


@pytest.fixture
def world(app):
    return build_world()


def record(w, kind="haorenhaoshi", who="resident", now=None):
    now = now or utcnow()
    return deeds.record(
        actor=w.users["grid_worker"],
        resident_id=w.users[who].id,
        deed_type=kind,
        description="帮邻居抢收稻谷",
        occurred_on=now.date(),
        now=now,
    )


def status(deed_id: int) -> str:
    fresh()
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
    assert deeds.post_due(now=later).posted == 1
    assert deeds.post_due(now=later).posted == 0
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
    assert deeds.post_due(now=utcnow() + timedelta(days=10)).posted == 0
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
    for when in (utcnow() + timedelta(days=2), utcnow() - timedelta(days=400)):  # tomorrow, last year
        dated = client.post(
            "/api/v1/deeds",
            headers=f.bearer(world.users["grid_worker"]),
            json={
                "resident_id": world.users["resident"].id,
                "deed_type": "haorenhaoshi",
                "description": "帮邻居抢收稻谷",
                "occurred_on": when.date().isoformat(),
            },
        )
        assert dated.status_code == 422 and set(dated.get_json()["errors"]) == {"occurred_on"}


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
        f"/api/v1/deeds/{deed.id}/objections", headers=f.bearer(world.users["stranger"]), json={"reason": "不属实"}
    )
    assert objection.status_code == 201
    fresh()
    assert [o.text for o in db.session.get(Deed, deed.id).objections] == ["不属实"]


def test_deed_types_are_listed_with_negative_points_for_deductions(client, world):
    body = client.get("/api/v1/deed-types?per_page=100").get_json()
    points = {t["code"]: t["points"] for t in body["items"]}
    assert points["jianyiyongwei"] == 50 and points["luanrenglaji"] == -5
    assert body["total"] == 8  # the catalogue a fresh installation gets from its migrations


def test_posting_twice_at_once_posts_once(app, world):
    from tests.test_core_concurrency import run_threads

    deed = record(world)
    deeds.approve(actor=world.users["reviewer"], deed_id=deed.id, now=utcnow())
    later = utcnow() + timedelta(days=4)
    deed_id = deed.id  # threads get ids, never another session's objects
    run_threads(app, 4, lambda i: deeds.post(deed_id, now=later))

    fresh()
    assert len(archive.entries(db.session, world.users["resident"].id)) == 1
    assert ledger.balance(db.session, world.users["resident"].id) == 10
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed).where(Deed.status == "posted")) == 1


# Objections during the notice (公示期异议) ------------------------------------------------------


def approved(w, kind="haorenhaoshi", who="resident", at=None):
    deed = record(w, kind=kind, who=who, now=at)
    deeds.approve(actor=w.users["reviewer"], deed_id=deed.id, now=at or utcnow())
    return deed


def object_to(client, who, deed_id, reason="并非本人所为"):
    return client.post(f"/api/v1/deeds/{deed_id}/objections", headers=f.bearer(who), json={"reason": reason})


def resolve(client, who, deed_id, objection_id, decision, note="已现场核实"):
    return client.post(
        f"/api/v1/deeds/{deed_id}/objections/{objection_id}/resolve",
        headers=f.bearer(who),
        json={"decision": decision, "note": note},
    )


def balance(user) -> int:
    fresh()
    return ledger.balance(db.session, user.id)


def test_a_deed_with_an_open_objection_does_not_post_when_its_notice_ends(client, world):
    deed = approved(world)
    objection = object_to(client, world.users["stranger"], deed.id)
    assert objection.status_code == 201
    assert objection.get_json()["status"] == "open" and objection.get_json()["reason"] == "并非本人所为"
    later = utcnow() + timedelta(days=4)
    assert deeds.post_due(now=later).posted == 0
    assert run_job("post-deeds", now=later) == "posted 0, failed 0"
    assert status(deed.id) == "approved" and balance(world.users["resident"]) == 0


def test_an_upheld_objection_rejects_the_deed_and_it_never_posts(client, world):
    deed = approved(world)
    objection = object_to(client, world.users["stranger"], deed.id).get_json()
    response = resolve(client, world.users["admin"], deed.id, objection["id"], "upheld")
    assert response.status_code == 200
    assert response.get_json()["status"] == "upheld" and response.get_json()["deed_status"] == "rejected"
    assert deeds.post_due(now=utcnow() + timedelta(days=4)).posted == 0
    assert status(deed.id) == "rejected" and balance(world.users["resident"]) == 0
    [audited] = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "deed.objection.uphold")).all()
    assert audited.after["status"] == "upheld" and audited.actor_id == world.users["admin"].id


def test_a_dismissed_objection_during_the_notice_lets_the_deed_post_when_the_notice_ends(client, world):
    deed = approved(world)
    objection = object_to(client, world.users["stranger"], deed.id).get_json()
    response = resolve(client, world.users["admin"], deed.id, objection["id"], "dismissed")
    assert response.status_code == 200 and response.get_json()["deed_status"] == "approved"
    assert balance(world.users["resident"]) == 0
    assert deeds.post_due(now=utcnow() + timedelta(days=4)).posted == 1
    assert status(deed.id) == "posted" and balance(world.users["resident"]) == 10
    assert db.session.scalar(sa.select(AuditEntry.id).where(AuditEntry.action == "deed.objection.dismiss"))


def test_the_last_dismissed_objection_after_the_notice_posts_the_deed_at_once(client, world):
    start = utcnow() - timedelta(days=4)
    deed = approved(world, at=start)  # three notice days: it ended yesterday
    first = deeds.object_to(actor=world.users["stranger"], deed_id=deed.id, reason="不属实", now=start)
    second = deeds.object_to(actor=world.users["target"], deed_id=deed.id, reason="有误", now=start)
    assert deeds.post_due(now=utcnow()).posted == 0
    held = resolve(client, world.users["admin"], deed.id, first.id, "dismissed")
    assert held.get_json()["deed_status"] == "approved" and balance(world.users["resident"]) == 0
    posted = resolve(client, world.users["admin"], deed.id, second.id, "dismissed")
    assert posted.status_code == 200 and posted.get_json()["deed_status"] == "posted"
    assert balance(world.users["resident"]) == 10
    assert [e.kind for e in archive.entries(db.session, world.users["resident"].id)] == ["deed"]


def test_an_objection_is_taken_only_during_the_notice(client, world):
    pending = record(world)
    assert object_to(client, world.users["stranger"], pending.id).status_code == 404
    missing = object_to(client, world.users["stranger"], 987654)
    assert missing.status_code == 404
    ended = approved(world, at=utcnow() - timedelta(days=4))
    late = object_to(client, world.users["stranger"], ended.id)
    assert late.status_code == 409 and late.get_json()["code"] == "deed_not_in_notice"
    deeds.post_due(now=utcnow())
    assert status(ended.id) == "posted"
    after = object_to(client, world.users["stranger"], ended.id)
    assert after.status_code == 409 and after.get_json()["code"] == "deed_not_in_notice"
    current = approved(world)
    empty = client.post(f"/api/v1/deeds/{current.id}/objections", headers=f.bearer(world.users["stranger"]), json={})
    assert empty.status_code == 422 and "reason" in empty.get_json()["errors"]


def test_nobody_resolves_an_objection_they_are_a_party_to(client, world):
    both = f.grant(
        f.grant(f.user("43010101", name="兼职"), "grid_worker", "region", "4301010101"), "reviewer", "region", "430101"
    )
    beneficiary = f.grant(f.user("4301010101", name="审核居民"), "reviewer", "region", "430101")
    recorded = deeds.record(
        actor=both,
        resident_id=beneficiary.id,
        deed_type="haorenhaoshi",
        description="x",
        occurred_on=utcnow().date(),
        now=utcnow(),
    )
    deeds.approve(actor=world.users["reviewer"], deed_id=recorded.id, now=utcnow())
    objector = world.users["admin"]
    objection = object_to(client, objector, recorded.id).get_json()
    for who, code in ((both, "same_person"), (beneficiary, "self_dealing"), (objector, "same_person")):
        refused = resolve(client, who, recorded.id, objection["id"], "dismissed")
        assert refused.status_code == 403 and refused.get_json()["code"] == code, who.name
    outsider = f.grant(f.user("430102", name="外镇审核"), "reviewer", "region", "430102")
    assert resolve(client, outsider, recorded.id, objection["id"], "upheld").status_code == 404
    other = approved(world)
    assert resolve(client, world.users["reviewer"], other.id, objection["id"], "upheld").status_code == 404
    bad = resolve(client, world.users["reviewer"], recorded.id, objection["id"], "maybe")
    assert bad.status_code == 422 and "decision" in bad.get_json()["errors"]
    assert resolve(client, world.users["reviewer"], recorded.id, objection["id"], "upheld").status_code == 200
    twice = resolve(client, world.users["reviewer"], recorded.id, objection["id"], "dismissed")
    assert twice.status_code == 409 and twice.get_json()["code"] == "objection_not_open"


def test_a_deed_is_voided_only_while_it_is_in_its_notice(client, world):
    deed = approved(world, at=utcnow() - timedelta(days=4))
    response = client.post(
        f"/api/v1/deeds/{deed.id}/void", headers=f.bearer(world.users["reviewer"]), json={"reason": "补充核实"}
    )
    assert response.status_code == 409 and response.get_json()["code"] == "deed_not_in_notice"
    assert deeds.post_due(now=utcnow()).posted == 1 and status(deed.id) == "posted"


def test_the_notice_page_shows_open_objections_and_their_resolution(client, world):
    upheld, dismissed = approved(world), approved(world, kind="lingliting")
    ids = {}
    for deed in (upheld, dismissed):
        ids[deed.id] = object_to(client, world.users["stranger"], deed.id).get_json()["id"]
    page = client.get("/notices").get_data(as_text=True)
    assert page.count("有异议，待处理") == 2
    resolve(client, world.users["admin"], upheld.id, ids[upheld.id], "upheld", note="经核实不属实")
    resolve(client, world.users["admin"], dismissed.id, ids[dismissed.id], "dismissed", note="经核实属实")
    page = client.get("/notices").get_data(as_text=True)
    assert "有异议，待处理" not in page
    assert "异议成立，不予计分" in page and "经核实不属实" in page
    assert "异议不成立" in page and "经核实属实" in page


def test_the_notice_form_files_an_objection_and_the_review_page_resolves_it(client, world):
    deed = approved(world)
    sign_in_page(client, world.users["stranger"])
    filed = client.post(f"/notices/{deed.id}/objection", data={"reason": "不属实", "csrf_token": csrf_token(client)})
    assert filed.status_code == 302
    fresh()
    [objection] = db.session.get(Deed, deed.id).objections
    assert objection.status == "open"

    sign_in_page(client, world.users["reviewer"])
    page = client.get("/deeds/review").get_data(as_text=True)
    assert f'name="objection_id" value="{objection.id}"' in page
    done = client.post(
        "/deeds/review",
        data={
            "action": "upheld",
            "deed_id": str(deed.id),
            "objection_id": str(objection.id),
            "note": "经核实不属实",
            "csrf_token": csrf_token(client),
        },
    )
    assert done.status_code == 302 and status(deed.id) == "rejected"


# The posting job ----------------------------------------------------------------------------------


def test_one_failing_deed_does_not_stop_the_others_from_posting(app, world, monkeypatch):
    made = [approved(world, kind=k) for k in ("haorenhaoshi", "xiaolaoaiqin", "lingliting")]
    broken = made[1].id
    append = archive.append

    def failing(session, **kwargs):
        if (kwargs.get("details") or {}).get("deed_id") == broken:
            raise RuntimeError("disk full")
        return append(session, **kwargs)

    monkeypatch.setattr(archive, "append", failing)
    later = utcnow() + timedelta(days=4)
    assert run_job("post-deeds", now=later) == "posted 2, failed 1"
    assert [status(d.id) for d in made] == ["posted", "approved", "posted"]
    assert balance(world.users["resident"]) == 10 + 5
    monkeypatch.setattr(archive, "append", append)
    assert deeds.post_due(now=later) == deeds.Posting(posted=1, failed=0)
    assert balance(world.users["resident"]) == 10 + 10 + 5
    assert ledger.invariant_problems(db.session) == []
