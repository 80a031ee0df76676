"""The moral archive: explained entries, a hash chain that finds any edit, and its three verifiers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.db import db, utcnow
from core.jobs import run_job
from points import archive, awards
from points.models import ArchiveEntry
from points.rules import Rule, credit
from tests import factories as f
from tests.authz import build_world
from tests.factories import fresh


def serve(user, department_id, key, hours=1.5, rule=None):
    start = utcnow().replace(microsecond=0) - timedelta(days=1)
    c = credit(start, start + timedelta(hours=hours), start, start + timedelta(hours=3), rule or Rule())
    return awards.credit_service(
        user_id=user.id,
        department_id=department_id,
        credit=c,
        key=key,
        now=utcnow(),
        activity={"title": "河道清理", "organizer": "城关派出所", "place": "花果山村"},
    )


def tamper(statement: str, params: dict) -> None:
    """Edit a stored row behind the application's back, as an attacker with database access would."""
    db.session.commit()  # ends the test's own (on SQLite: snapshot) read transaction
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE archive_entry DISABLE TRIGGER USER"))
            conn.execute(sa.text(statement), params)
            conn.execute(sa.text("ALTER TABLE archive_entry ENABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS archive_entry_no_update"))
            conn.execute(sa.text(statement), params)


@pytest.fixture
def world(app):
    return build_world()


def test_a_service_credit_is_explained_on_the_archive(client, world):
    user = world.users["resident"]
    entry = serve(user, world.departments["d1"].id, "attendance:1:1")
    assert entry.points == 15 and entry.service_minutes == 90
    assert "15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）" in entry.summary
    body = client.get("/api/v1/me/archive", headers=f.bearer(user)).get_json()
    assert body["totals"] == {
        "service_hours": 1.5,
        "manual_hours": 0.0,
        "points_earned": 15,
        "points_redeemed": 0,
        "balance": 15,
    }
    [shown] = body["entries"]
    assert shown["seq"] == 1 and shown["kind"] == "service" and shown["points"] == 15
    assert shown["explanation"] == "15 分 = 1.5 小时 × 10 分/小时（按 30 分钟取整）"
    assert body["head_hash"] == shown["hash"] and len(shown["hash"]) == 64
    assert body["resident"]["phone"].count("*") == 4
    assert serve(user, world.departments["d1"].id, "attendance:1:1").id == entry.id  # idempotent


def test_a_correction_reverses_and_recredits(world):
    user = world.users["resident"]
    serve(user, world.departments["d1"].id, "attendance:7:1", hours=1)
    awards.reverse_service(
        key="attendance:7:1", new_key="attendance:7:1:reversed", reason="签退时间有误", now=utcnow(), actor_id=None
    )
    serve(user, world.departments["d1"].id, "attendance:7:2", hours=2)
    kinds = [(e.kind, e.points, e.service_minutes) for e in archive.entries(db.session, user.id)]
    assert kinds == [("service", 10, 60), ("reversal", -10, -60), ("service", 20, 120)]
    assert archive.totals(db.session, user.id)["balance"] == 20
    assert archive.verify(db.session, user.id).ok


def test_an_edited_row_is_found_by_every_verifier(client, world, app):
    user = world.users["resident"]
    for i in range(4):
        serve(user, world.departments["d1"].id, f"attendance:{i}:1")
    assert archive.verify(db.session, user.id).ok
    user_id = user.id
    tamper("UPDATE archive_entry SET points = 500 WHERE user_id = :u AND seq = 3", {"u": user_id})

    result = archive.verify(db.session, user.id)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    api = client.get(f"/api/v1/residents/{user.id}/archive/verify", headers=f.bearer(world.users["admin"]))
    body = api.get_json()
    assert {k: body[k] for k in ("ok", "entries", "first_bad_seq")} == {"ok": False, "entries": 3, "first_bad_seq": 3}
    assert body["problems"]
    cli = app.test_cli_runner().invoke(args=["archive", "verify"])
    assert cli.exit_code == 1 and f"resident {user.id}: BROKEN at entry 3" in cli.output
    run_job("verify-archives")
    finding = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "archive.verify"))
    assert finding.after["broken"] == [{"user_id": user.id, "first_bad_seq": 3}]


def test_a_deleted_row_breaks_the_chain_at_the_gap(world):
    user_id = world.users["resident"].id
    for i in range(3):
        serve(world.users["resident"], world.departments["d1"].id, f"attendance:{i}:1")
    if db.engine.dialect.name == "sqlite":
        tamper("DROP TRIGGER archive_entry_no_delete", {})
    tamper("DELETE FROM archive_entry WHERE user_id = :u AND seq = 2", {"u": user_id})
    assert archive.verify(db.session, user_id).first_bad_seq == 3


def test_a_deleted_newest_entry_is_found_by_the_anchor(app, world):
    user_id = world.users["resident"].id
    for i in range(3):
        serve(world.users["resident"], world.departments["d1"].id, f"attendance:{i}:1")
    if db.engine.dialect.name == "sqlite":
        tamper("DROP TRIGGER archive_entry_no_delete", {})
    tamper("DELETE FROM archive_entry WHERE user_id = :u AND seq = 3", {"u": user_id})
    result = archive.verify(db.session, user_id)
    assert (result.ok, result.entries, result.first_bad_seq) == (False, 2, 3)
    cli = app.test_cli_runner().invoke(args=["archive", "verify", "--resident", str(user_id)])
    assert cli.exit_code == 1


def test_an_entry_rewritten_with_a_consistent_chain_is_found_by_the_ledger(world):
    """Rewrite the newest entry's points and re-hash it and the anchor: the archive no longer adds
    up to the balance, and the entry no longer matches its transfer's account total."""
    user_id = world.users["resident"].id
    serve(world.users["resident"], world.departments["d1"].id, "attendance:1:1")
    entry = archive.entries(db.session, user_id)[0]
    entry.points = 500
    forged = archive.entry_hash(entry)
    fresh()
    tamper(
        "UPDATE archive_entry SET points = 500, hash = :h WHERE user_id = :u AND seq = 1", {"u": user_id, "h": forged}
    )
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE account SET archive_head = :h WHERE owner_id = :u AND kind = 'resident'"),
            {"u": user_id, "h": forged},
        )
    result = archive.verify(db.session, user_id)
    assert not result.ok and any("balance" in p for p in result.problems)


def test_an_intact_archive_verifies_and_the_cli_exits_zero(app, world):
    serve(world.users["resident"], world.departments["d1"].id, "attendance:1:1")
    result = app.test_cli_runner().invoke(args=["archive", "verify", "--resident", str(world.users["resident"].id)])
    assert result.exit_code == 0 and "1 intact, 0 broken" in result.output


def test_the_database_refuses_to_edit_archive_entries(world):
    serve(world.users["resident"], world.departments["d1"].id, "attendance:1:1")
    db.session.commit()
    for statement in ("UPDATE archive_entry SET summary = 'x'", "DELETE FROM archive_entry"):
        with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ArchiveEntry)) == 1


def test_admin_adjustments_need_a_reason_and_are_audited(client, world):
    admin, user = world.users["admin"], world.users["resident"]
    url = f"/api/v1/residents/{user.id}/adjustments"
    missing = client.post(url, json={"points": 5}, headers=f.bearer(admin))
    assert missing.status_code == 422 and "reason" in missing.get_json()["errors"]
    zero = client.post(url, json={"points": 0, "reason": "x"}, headers=f.bearer(admin))
    assert zero.status_code == 422
    debit = client.post(url, json={"points": -5, "reason": "误加"}, headers=f.bearer(admin))
    assert debit.status_code == 422 and debit.get_json()["code"] == "insufficient_points"
    ok = client.post(url, json={"points": 8, "reason": "抗洪表彰"}, headers=f.bearer(admin))
    assert ok.status_code == 201 and ok.get_json()["points"] == 8
    assert db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "points.adjust")).after == {
        "points": 8,
        "reason": "抗洪表彰",
    }


def test_a_repeated_idempotency_key_returns_the_first_response_and_changes_nothing(client, world):
    admin, user = world.users["admin"], world.users["resident"]
    url = f"/api/v1/residents/{user.id}/adjustments"
    headers = {**f.bearer(admin), "Idempotency-Key": "basket-42"}
    first = client.post(url, json={"points": 8, "reason": "表彰"}, headers=headers)
    again = client.post(url, json={"points": 8, "reason": "表彰"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.get_json() == again.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert archive.totals(db.session, user.id)["balance"] == 8
    other = client.post(url, json={"points": 9, "reason": "表彰"}, headers=headers)
    assert other.status_code == 409 and other.get_json()["code"] == "idempotency_conflict"
    too_long = client.post(url, json={"points": 8, "reason": "表彰"}, headers={**headers, "Idempotency-Key": "x" * 65})
    assert too_long.status_code == 422


def test_concurrent_retries_of_one_key_apply_once(app, world):
    from tests.test_core_concurrency import run_threads

    admin, user = world.users["admin"], world.users["resident"]
    token = f.token(admin)
    url = f"/api/v1/residents/{user.id}/adjustments"  # threads never touch this session's objects

    def post(i):
        return app.test_client().post(
            url,
            json={"points": 3, "reason": "表彰"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
        )

    responses = run_threads(app, 8, post)
    assert {r.status_code for r in responses} == {201}
    assert len({r.get_data() for r in responses}) == 1
    fresh()
    assert archive.totals(db.session, user.id)["balance"] == 3


def test_ledger_check_passes_on_sound_books_and_names_each_break(app, world):
    user_id = world.users["resident"].id
    serve(world.users["resident"], world.departments["d1"].id, "attendance:1:1")
    runner = app.test_cli_runner()
    sound = runner.invoke(args=["ledger", "check"])
    assert sound.exit_code == 0 and "0 problems" in sound.output
    db.session.commit()
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE account SET balance = balance + 100 WHERE owner_id = :u AND kind = 'resident'"),
            {"u": user_id},
        )
        conn.execute(sa.text("UPDATE item SET stock = stock + 1 WHERE id = :i"), {"i": world.items["oil"].id})
    fresh()  # the test's own read transaction (on SQLite: a snapshot) ends here
    broken = runner.invoke(args=["ledger", "check"])
    assert broken.exit_code == 1, broken.output
    assert "ledger: " in broken.output and "stock: " in broken.output
    assert f"archive of resident {user_id}: " in broken.output
