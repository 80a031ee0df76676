"""Moving up and backing up: `flask db copy` (SQLite into PostgreSQL), `flask db backup` / `restore`."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from community.models import Department, RoleGrant, User
from core import dbtools
from core.db import db, utcnow
from moralcredit import create_app
from tests import factories as f
from tests.conftest import PG_ADMIN_URL, IsolatedClient, pg_test_url, recreate_pg_database
from volunteer import tokens
from volunteer.models import Activity


def snapshot(engine: sa.Engine) -> dict[str, list[dict]]:
    """Every row of every table, by primary key, as the app's types read them."""
    with engine.connect() as conn:
        return {
            t.name: [dict(r) for r in conn.execute(t.select().order_by(*t.primary_key.columns)).mappings()]
            for t in db.metadata.sorted_tables
        }


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t.name: conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in db.metadata.sorted_tables}


@pytest.fixture
def target_url():
    """A new, empty PostgreSQL database of this test's own (dropped afterwards)."""
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    url = pg_test_url() + "_copy"
    recreate_pg_database(url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_a_sqlite_installation_copies_into_postgresql_and_works_there(app, backend, target_url):
    if backend.name != "sqlite":
        pytest.skip("the copy reads a SQLite installation")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    assert runner.invoke(args=["jobs", "run", "stats-refresh"]).exit_code == 0  # rollups to copy too
    db.session.remove()
    before = snapshot(db.engine)
    assert before["transfer"] and before["stats_people"] and before["deed_type"]

    copied = runner.invoke(args=["db", "copy", "--to", target_url, "--page", "7"])
    assert copied.exit_code == 0, copied.output
    assert "checked the ledgers and" in copied.output and ": 0 problems" in copied.output

    there = create_app("testing", {"SQLALCHEMY_DATABASE_URI": target_url})
    there.test_client_class = IsolatedClient
    with there.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert counts(db.engine) == {name: len(rows) for name, rows in before.items()}
        assert snapshot(db.engine) == before
        cli = there.test_cli_runner()
        checked = cli.invoke(args=["ledger", "check"])
        assert checked.exit_code == 0 and ": 0 problems" in checked.output, checked.output
        verified = cli.invoke(args=["archive", "verify"])
        assert verified.exit_code == 0 and " 0 broken" in verified.output, verified.output

        # The app works on the copy: staff and a resident sign in, an activity is made, a check-in
        # writes new rows (which needs the identity sequences past the copied ids).
        def sign_in(phone: str) -> dict[str, str]:
            response = there.test_client().post("/api/v1/auth/token", json={"phone": phone, "password": "Demo2026"})
            assert response.status_code == 200, response.get_json()
            return {"Authorization": f"Bearer {response.get_json()['token']}"}

        organizer = db.session.scalar(sa.select(User).where(User.phone == "13800000002"))
        grant = db.session.scalar(sa.select(RoleGrant).where(RoleGrant.user_id == organizer.id))
        department = db.session.get(Department, int(grant.scope_id))
        start = utcnow().replace(microsecond=0) - timedelta(minutes=30)
        body = {
            "title": "复制后的第一次活动",
            "description": "检验迁移",
            "category": "环境整治",
            "department_id": department.id,
            "region_code": department.region.code,
            "address": "县政府门口",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "allow_walk_in": True,
        }
        client, staff = there.test_client(), sign_in(organizer.phone)
        made = client.post("/api/v1/activities", json=body, headers=staff)
        assert made.status_code == 201, made.get_json()
        activity_id = made.get_json()["id"]
        assert activity_id > max(r["id"] for r in before["activity"])
        published = client.post(f"/api/v1/activities/{activity_id}/publish", headers=staff)
        assert published.status_code == 200
        resident = db.session.scalar(
            sa.select(User).where(User.region_id == department.region_id, ~User.phone.like("138000000%")).limit(1)
        ) or db.session.scalar(sa.select(User).where(~User.phone.like("138000000%")).order_by(User.id).limit(1))
        token = tokens.rotating(db.session.get(Activity, activity_id), utcnow())[0]
        scanned = there.test_client().post("/api/v1/checkins", json={"token": token}, headers=sign_in(resident.phone))
        assert scanned.status_code == 200 and scanned.get_json()["action"] == "check_in", scanned.get_json()
        assert scanned.get_json()["attendance"]["id"] > max(r["id"] for r in before["attendance"])
        db.session.remove()
        db.engine.dispose()

    again = runner.invoke(args=["db", "copy", "--to", target_url])
    assert again.exit_code != 0 and "不是空的" in again.output


def test_pages_put_a_row_after_the_row_it_refers_to():
    """Ids are not always parents first (a village moved under a township made after it)."""
    table = sa.Table(
        "place",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.ForeignKey("place.id")),
    )
    parents = {1: 6, 2: None, 3: 1, 4: 9, 5: 4, 6: None, 7: 3, 8: 8, 9: 2}
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE place (id INTEGER PRIMARY KEY, parent_id INTEGER)"))  # no check
        conn.execute(table.insert(), [{"id": k, "parent_id": v} for k, v in parents.items()])
        pages = list(dbtools._ordered_pages(conn, table, 2))
    order = [row["id"] for page in pages for row in page]
    assert sorted(order) == sorted(parents) and all(len(page) <= 4 for page in pages)
    for position, ident in enumerate(order):
        parent = parents[ident]
        assert parent is None or parent == ident or order.index(parent) < position, (ident, order)


def test_a_copy_refuses_its_own_database_and_an_unreachable_target(app, backend, tmp_path):
    runner = app.test_cli_runner()
    own = runner.invoke(args=["db", "copy", "--to", backend.url])
    assert own.exit_code != 0 and "同一个数据库" in own.output
    if backend.name == "sqlite":
        other = tmp_path / "other.db"
        sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
        busy = runner.invoke(args=["db", "copy", "--to", f"sqlite:///{other}"])
        assert busy.exit_code != 0 and "不是空的" in busy.output
    gone = runner.invoke(args=["db", "copy", "--to", "postgresql://nobody@127.0.0.1:1/nothing"])
    assert gone.exit_code != 0 and "连不上目标数据库" in gone.output


def test_a_backup_restores_to_exactly_its_state_and_the_books_check(app, backend, tmp_path, monkeypatch):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "seed", "--scale", "test"]).exit_code == 0  # every domain, in bulk
    db.session.remove()
    before = snapshot(db.engine)
    assert before["archive_entry"] and before["redemption"] and before["attendance"]
    file = tmp_path / ("backup.db" if backend.name == "sqlite" else "backup.dump")
    made = runner.invoke(args=["db", "backup", str(file)])
    assert made.exit_code == 0 and file.stat().st_size > 0, made.output
    assert runner.invoke(args=["db", "backup", str(file)]).exit_code != 0  # never overwritten unasked

    # Life goes on after the backup: more points, a new resident.
    resident = db.session.scalar(sa.select(User).where(~User.phone.like("138000000%")).limit(1))
    f.fund(resident, 12)
    f.user(resident.region.code, name="王五")
    db.session.remove()
    assert snapshot(db.engine) != before

    changed = snapshot(db.engine)
    refused = runner.invoke(args=["db", "restore", str(file)])
    assert refused.exit_code != 0 and "--force" in refused.output
    torn = tmp_path / f"torn{file.suffix}"  # a backup cut short (a full disk, a copy that broke off)
    torn.write_bytes(file.read_bytes()[: file.stat().st_size * 2 // 3])
    broken = runner.invoke(args=["db", "restore", "--force", str(torn)])
    assert broken.exit_code != 0 and "未改变" in broken.output, broken.output
    if backend.name == "postgresql":  # past the version check too: the load stops half-way and rolls back
        monkeypatch.setattr(dbtools, "_dump_revision", lambda *_: dbtools._head())
        broken = runner.invoke(args=["db", "restore", "--force", str(torn)])
        assert broken.exit_code != 0 and "pg_restore" in broken.output and "未改变" in broken.output, broken.output
    db.session.remove()
    assert snapshot(db.engine) == changed  # neither changed anything
    restored = runner.invoke(args=["db", "restore", "--force", str(file)])
    assert restored.exit_code == 0, restored.output
    assert ": 0 problems" in restored.output
    db.session.remove()
    assert snapshot(db.engine) == before
    # The restored database takes new rows after the restored ones (sequences came back too).
    later = f.user(resident.region.code, name="赵六")
    assert later.id > max(r["id"] for r in before["users"])


def test_a_backup_restores_into_an_empty_database_without_force(app, backend, tmp_path):
    if backend.name != "sqlite":
        pytest.skip("a new SQLite file is an empty database; PostgreSQL restores over a full one in the round trip")
    f.region("430922", "桃江县")
    f.user("430922")
    db.session.remove()
    before = snapshot(db.engine)
    file = tmp_path / "backup.db"
    assert app.test_cli_runner().invoke(args=["db", "backup", str(file)]).exit_code == 0
    empty = tmp_path / "new.db"
    elsewhere = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{empty}"})
    with elsewhere.app_context():
        restored = elsewhere.test_cli_runner().invoke(args=["db", "restore", str(file)])
        assert restored.exit_code == 0, restored.output
        assert snapshot(db.engine) == before
        db.engine.dispose()


def test_restore_refuses_what_is_not_a_backup_of_this_kind(app, backend, tmp_path):
    runner = app.test_cli_runner()
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    assert "不是本系统的备份" in runner.invoke(args=["db", "restore", "--force", str(junk)]).output
    other = tmp_path / "other"
    if backend.name == "sqlite":
        other.write_bytes(b"PGDMP" + bytes(100))
        expected = "postgresql 的备份"
    else:
        sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.close()
        expected = "flask db copy"
    wrong = runner.invoke(args=["db", "restore", "--force", str(other)])
    assert wrong.exit_code != 0 and expected in wrong.output
    if backend.name == "sqlite":
        stranger = tmp_path / "stranger.db"
        sqlite3.connect(stranger).execute("CREATE TABLE alembic_version (version_num)").connection.close()
        with sqlite3.connect(stranger) as conn:
            conn.execute("INSERT INTO alembic_version VALUES ('9999')")
        newer = runner.invoke(args=["db", "restore", "--force", str(stranger)])
        assert newer.exit_code != 0 and "9999" in newer.output


def test_without_the_postgresql_tools_backup_says_what_to_install(app, backend, tmp_path, monkeypatch):
    if backend.name != "postgresql":
        pytest.skip("SQLite backs up without external tools")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = app.test_cli_runner().invoke(args=["db", "backup", str(tmp_path / "x.dump")])
    assert result.exit_code != 0 and "找不到 pg_dump" in result.output and "postgresql-client" in result.output
    assert not Path(tmp_path / "x.dump").exists()


def test_a_sqlite_backup_is_taken_while_a_writer_holds_the_lock_and_has_only_what_was_committed(app, backend, tmp_path):
    if backend.name != "sqlite":
        pytest.skip("SQLite's online backup")
    f.region("430922", "桃江县")
    f.user("430922", name="李四")
    db.session.remove()
    writer = sqlite3.connect(backend.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the app's write lock, held through the backup
    writer.execute("UPDATE users SET name = '未提交' WHERE name = '李四'")
    try:
        file = tmp_path / "online.db"
        made = app.test_cli_runner().invoke(args=["db", "backup", str(file)])
        assert made.exit_code == 0, made.output
    finally:
        writer.execute("COMMIT")
        writer.close()
    with sqlite3.connect(file) as copy:
        assert copy.execute("SELECT name FROM users").fetchall() == [("李四",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
    assert not (tmp_path / "online.db.partial").exists()
