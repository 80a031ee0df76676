"""Separation of duties for points: nobody moves points to themselves or their household, and an
admin adjustment above the review threshold waits for a second admin (issue 14)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from community.models import Household, User
from core.audit import AuditEntry
from core.db import db, unit_of_work, utcnow
from points import adjustments, archive, ledger
from points.models import Adjustment, Deed
from tests import factories as f
from tests.authz import build_world, csrf_token, sign_in_page
from tests.factories import fresh


@pytest.fixture
def world(app):
    return build_world()


def same_household(*people: User) -> None:
    with unit_of_work() as session:
        household = Household(number=f"H-{people[0].id}", region_id=people[0].region_id)
        session.add(household)
        session.flush()
        for person in people:
            session.get(User, person.id).household_id = household.id


def second_admin() -> User:
    return f.grant(f.user("4301", name="郑管理"), "admin", "region", "4301")


def adjust(client, actor: User, resident: User, points: int, reason: str = "抗洪抢险表彰", key: str | None = None):
    headers = {**f.bearer(actor), **({"Idempotency-Key": key} if key else {})}
    return client.post(
        f"/api/v1/residents/{resident.id}/adjustments", json={"points": points, "reason": reason}, headers=headers
    )


def balance(user: User) -> int:
    fresh()
    return ledger.balance(db.session, user.id)


def actions(name: str) -> list[AuditEntry]:
    fresh()
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == name)))


# 1. Admin adjustments --------------------------------------------------------------------------


def test_an_admin_never_adjusts_his_own_points(client, world):
    admin = world.users["admin"]
    response = adjust(client, admin, admin, 5000)
    assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
    small = adjust(client, admin, admin, 5)
    assert small.status_code == 403 and small.get_json()["code"] == "self_dealing"
    assert balance(admin) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Adjustment)) == 0


def test_an_admin_never_adjusts_the_points_of_his_household(client, world):
    admin, spouse = world.users["admin"], f.user("4301", name="周太太")
    same_household(admin, spouse)
    response = adjust(client, admin, spouse, 10)
    assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
    assert balance(spouse) == 0


def test_an_adjustment_above_the_threshold_waits_for_a_second_admin(client, world):
    admin, resident, other = world.users["admin"], world.users["resident"], second_admin()
    pending = adjust(client, admin, resident, 5000)
    assert pending.status_code == 202
    body = pending.get_json()
    assert body["status"] == "pending" and body["points"] == 5000 and body["entry"] is None
    assert balance(resident) == 0 and archive.entries(db.session, resident.id) == []

    approved = client.post(f"/api/v1/adjustments/{body['id']}/approve", json={}, headers=f.bearer(other))
    assert approved.status_code == 200
    done = approved.get_json()
    assert done["status"] == "posted" and done["decided_by_id"] == other.id
    assert done["entry"]["kind"] == "adjustment" and done["entry"]["points"] == 5000
    assert balance(resident) == 5000
    [entry] = archive.entries(db.session, resident.id)
    assert entry.details["approved_by"] == other.name and entry.details["by"] == admin.name
    assert ledger.invariant_problems(db.session) == []
    again = client.post(f"/api/v1/adjustments/{body['id']}/approve", json={}, headers=f.bearer(other))
    assert again.status_code == 409 and again.get_json()["code"] == "adjustment_not_pending"
    assert balance(resident) == 5000
    assert [a.after["requested_by"] for a in actions("points.adjust.approve")] == [admin.id]
    assert [a.after["status"] for a in actions("points.adjust.request")] == ["pending"]


def test_an_adjustment_at_the_threshold_posts_at_once(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    response = adjust(client, admin, resident, adjustments.DEFAULT_REVIEW_ABOVE)
    assert response.status_code == 201 and response.get_json()["points"] == adjustments.DEFAULT_REVIEW_ABOVE
    assert balance(resident) == adjustments.DEFAULT_REVIEW_ABOVE
    assert db.session.scalar(sa.select(Adjustment.status)) == "posted"


def test_a_large_adjustment_split_into_small_ones_still_waits_for_a_second_admin(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    step = adjustments.DEFAULT_REVIEW_ABOVE // 2
    answers = [adjust(client, admin, resident, step, reason=f"表彰 {n}") for n in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 202, 202]
    assert balance(resident) == 2 * step
    # Another admin's own small adjustment is counted on its own.
    other = f.grant(f.user("4301", name="郑管理"), "admin", "region", "4301")
    assert adjust(client, other, resident, step, reason="表彰").status_code == 201


def test_the_review_threshold_is_configured_and_applies_to_debits_too(app, client, world, monkeypatch):
    admin, resident = world.users["admin"], world.users["resident"]
    f.fund(resident, 50)
    monkeypatch.setitem(app.config, "ADJUSTMENT_REVIEW_ABOVE", 5)
    debit = adjust(client, admin, resident, -8, reason="误加更正")
    assert debit.status_code == 202 and debit.get_json()["status"] == "pending"
    assert balance(resident) == 50
    small = adjust(client, admin, resident, -5, reason="误加更正")
    assert small.status_code == 201 and balance(resident) == 45


def test_the_requester_never_approves_his_own_adjustment(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    pending = adjust(client, admin, resident, 100).get_json()
    response = client.post(f"/api/v1/adjustments/{pending['id']}/approve", json={}, headers=f.bearer(admin))
    assert response.status_code == 403 and response.get_json()["code"] == "same_person"
    assert balance(resident) == 0


def test_an_admin_of_the_residents_household_never_approves_the_adjustment(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    relative = f.grant(f.user("4301010101", name="张大明"), "admin", "region", "430101")
    same_household(resident, relative)
    pending = adjust(client, admin, resident, 100).get_json()
    response = client.post(f"/api/v1/adjustments/{pending['id']}/approve", json={}, headers=f.bearer(relative))
    assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
    rejected = client.post(
        f"/api/v1/adjustments/{pending['id']}/reject", json={"reason": "x"}, headers=f.bearer(relative)
    )
    assert rejected.status_code == 403 and rejected.get_json()["code"] == "self_dealing"
    assert balance(resident) == 0


def test_an_admin_outside_the_residents_region_neither_sees_nor_approves_the_adjustment(client, world):
    pending = adjust(client, world.users["admin"], world.users["resident"], 100).get_json()
    response = client.post(
        f"/api/v1/adjustments/{pending['id']}/approve", json={}, headers=f.bearer(world.users["admin_elsewhere"])
    )
    assert response.status_code == 404
    listed = client.get("/api/v1/adjustments?status=pending", headers=f.bearer(world.users["admin_elsewhere"]))
    assert listed.status_code == 200 and listed.get_json()["items"] == []


def test_a_rejected_adjustment_posts_nothing_and_cannot_be_approved_later(client, world):
    admin, resident, other = world.users["admin"], world.users["resident"], second_admin()
    pending = adjust(client, admin, resident, 300).get_json()
    url = f"/api/v1/adjustments/{pending['id']}"
    missing = client.post(f"{url}/reject", json={}, headers=f.bearer(other))
    assert missing.status_code == 422 and "reason" in missing.get_json()["errors"]
    rejected = client.post(f"{url}/reject", json={"reason": "证明材料不全"}, headers=f.bearer(other))
    assert rejected.status_code == 200
    assert rejected.get_json()["status"] == "rejected" and rejected.get_json()["note"] == "证明材料不全"
    late = client.post(f"{url}/approve", json={}, headers=f.bearer(other))
    assert late.status_code == 409 and late.get_json()["code"] == "adjustment_not_pending"
    assert balance(resident) == 0
    assert [a.after["status"] for a in actions("points.adjust.reject")] == ["rejected"]


def test_two_admins_approving_at_once_post_the_adjustment_once(app, client, world):
    from tests.test_core_concurrency import run_threads

    resident = world.users["resident"]
    pending_id = adjust(client, world.users["admin"], resident, 100).get_json()["id"]
    tokens = [f.token(second_admin()), f.token(f.grant(f.user("4301", name="冯管理"), "admin", "region", "4301"))]

    def approve(i):
        return app.test_client().post(
            f"/api/v1/adjustments/{pending_id}/approve", json={}, headers={"Authorization": f"Bearer {tokens[i]}"}
        )

    responses = run_threads(app, 2, approve)
    assert sorted(r.status_code for r in responses) == [200, 409]
    assert balance(resident) == 100 and len(archive.entries(db.session, resident.id)) == 1
    assert ledger.invariant_problems(db.session) == []


def test_adjustment_points_are_bounded_and_nonzero(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    for points in (0, 10001, -10001, 2**40):
        response = adjust(client, admin, resident, points)
        assert response.status_code == 422 and "points" in response.get_json()["errors"], points
    assert adjust(client, admin, resident, 10000).status_code == 202


def test_pending_adjustments_are_listed_for_admins_of_the_region(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    pending = adjust(client, admin, resident, 100).get_json()
    adjust(client, admin, resident, 5)
    listed = client.get("/api/v1/adjustments?status=pending", headers=f.bearer(second_admin())).get_json()
    assert [a["id"] for a in listed["items"]] == [pending["id"]] and listed["total"] == 1
    everything = client.get("/api/v1/adjustments", headers=f.bearer(admin)).get_json()
    assert sorted(a["status"] for a in everything["items"]) == ["pending", "posted"]
    bad = client.get("/api/v1/adjustments?status=nope", headers=f.bearer(admin))
    assert bad.status_code == 422


def test_a_repeated_pending_request_returns_the_same_adjustment(client, world):
    admin, resident = world.users["admin"], world.users["resident"]
    first = adjust(client, admin, resident, 100, key="flood-1")
    again = adjust(client, admin, resident, 100, key="flood-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.get_json()["id"] == again.get_json()["id"]
    other = adjust(client, admin, resident, 200, key="flood-1")
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Adjustment)) == 1


def test_the_adjustment_review_page_approves_and_refuses_the_requester(client, world):
    admin, resident, other = world.users["admin"], world.users["resident"], second_admin()
    pending = adjust(client, admin, resident, 100, reason="见义勇为县级表彰").get_json()

    sign_in_page(client, admin)
    page = client.get("/admin/adjustments").get_data(as_text=True)
    assert "见义勇为县级表彰" in page
    own = client.post(
        "/admin/adjustments",
        data={"action": "approve", "adjustment_id": str(pending["id"]), "csrf_token": csrf_token(client)},
    )
    assert own.status_code == 302 and balance(resident) == 0
    assert db.session.get(Adjustment, pending["id"]).status == "pending"

    sign_in_page(client, other)
    done = client.post(
        "/admin/adjustments",
        data={"action": "approve", "adjustment_id": str(pending["id"]), "csrf_token": csrf_token(client)},
    )
    assert done.status_code == 302 and balance(resident) == 100
    assert db.session.get(Adjustment, pending["id"]).status == "posted"
    garbage = client.post(
        "/admin/adjustments", data={"action": "approve", "adjustment_id": "9" * 30, "csrf_token": csrf_token(client)}
    )
    assert garbage.status_code == 302


# 2. Deeds for oneself ---------------------------------------------------------------------------


def record_via_api(client, actor: User, resident: User, kind: str = "jianyiyongwei"):
    return client.post(
        "/api/v1/deeds",
        headers=f.bearer(actor),
        json={
            "resident_id": resident.id,
            "deed_type": kind,
            "description": "河边救起落水儿童",
            "occurred_on": utcnow().date().isoformat(),
        },
    )


def test_a_grid_worker_never_records_a_deed_for_herself(client, world):
    worker = f.grant(f.user("4301010101", name="网格员本人"), "grid_worker", "region", "4301010101")
    response = record_via_api(client, worker, worker)
    assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


def test_a_grid_worker_never_records_a_deed_for_her_household(client, world):
    worker = world.users["grid_worker"]
    husband = f.user("4301010101", name="钱先生")
    same_household(worker, husband)
    response = record_via_api(client, worker, husband)
    assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"


def test_a_reviewer_never_approves_a_deed_for_himself_or_his_household(client, world):
    reviewer = f.grant(f.user("4301010101", name="孙审核本人"), "reviewer", "region", "430101")
    wife = f.user("4301010101", name="孙太太")
    same_household(reviewer, wife)
    for beneficiary in (reviewer, wife):
        deed = record_via_api(client, world.users["grid_worker"], beneficiary).get_json()
        for action in ("approve", "reject"):
            response = client.post(f"/api/v1/deeds/{deed['id']}/{action}", json={}, headers=f.bearer(reviewer))
            assert response.status_code == 403 and response.get_json()["code"] == "self_dealing"
        fresh()
        assert db.session.get(Deed, deed["id"]).status == "pending"
    # Someone else may approve them.
    ok = client.post(f"/api/v1/deeds/{deed['id']}/approve", json={}, headers=f.bearer(world.users["reviewer"]))
    assert ok.status_code == 200


def test_the_recorder_never_approves_through_the_api(client, world):
    both = f.grant(
        f.grant(f.user("43010101", name="兼职"), "grid_worker", "region", "4301010101"), "reviewer", "region", "430101"
    )
    deed = record_via_api(client, both, world.users["resident"]).get_json()
    response = client.post(f"/api/v1/deeds/{deed['id']}/approve", json={}, headers=f.bearer(both))
    assert response.status_code == 403 and response.get_json()["code"] == "same_person"


def test_the_deed_form_refuses_a_deed_for_the_grid_worker_herself(client, world):
    worker = f.grant(f.user("4301010101", name="网格员本人"), "grid_worker", "region", "4301010101")
    sign_in_page(client, worker)
    response = client.post(
        "/deeds/new",
        data={
            "resident_id": str(worker.id),
            "deed_type": "jianyiyongwei",
            "description": "河边救起落水儿童",
            "occurred_on": utcnow().date().isoformat(),
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 403  # the form again, with the refusal, instead of "saved"
    assert "河边救起落水儿童" in response.get_data(as_text=True)  # what was typed is kept
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deed)) == 0


def test_the_review_page_refuses_a_reviewer_approving_his_own_deed(client, world):
    reviewer = f.grant(f.user("4301010101", name="孙审核本人"), "reviewer", "region", "430101")
    deed = record_via_api(client, world.users["grid_worker"], reviewer).get_json()
    sign_in_page(client, reviewer)
    response = client.post(
        "/deeds/review", data={"action": "approve", "deed_id": str(deed["id"]), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    fresh()
    assert db.session.get(Deed, deed["id"]).status == "pending"


def test_ids_beyond_any_row_find_nothing_instead_of_failing(client, world):
    huge = 10**11
    admin, reviewer = world.users["admin"], world.users["reviewer"]
    for path, who, body in (
        (f"/api/v1/adjustments/{huge}/approve", admin, {}),
        (f"/api/v1/adjustments/{huge}/reject", admin, {"reason": "x"}),
        (f"/api/v1/residents/{huge}/adjustments", admin, {"points": 5, "reason": "x"}),
        (f"/api/v1/deeds/{huge}/approve", reviewer, {}),
        (f"/api/v1/deeds/{huge}/objections", reviewer, {"reason": "x"}),
        (f"/api/v1/deeds/{huge}/objections/{huge}/resolve", reviewer, {"decision": "upheld"}),
    ):
        assert client.post(path, json=body, headers=f.bearer(who)).status_code == 404, path
    far = client.post(
        "/api/v1/deeds",
        headers=f.bearer(world.users["grid_worker"]),
        json={"resident_id": huge, "deed_type": "haorenhaoshi", "description": "x", "occurred_on": "2026-11-01"},
    )
    assert far.status_code == 422
