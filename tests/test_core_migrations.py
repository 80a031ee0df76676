"""The schema comes only from Alembic: up from empty, down to base, up again, and it matches the models."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from core.db import db
from moralcredit import create_app
from tests.conftest import recreate_pg_database


@pytest.fixture
def empty_app(backend, tmp_path):
    """An app on a database of its own that no migration has touched yet."""
    if backend.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        url = backend.url.rsplit("/", 1)[0] + "/moralcredit_migrations" + os.environ.get("PYTEST_XDIST_WORKER", "")
        recreate_pg_database(url)
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def tables() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_downgrade_to_base_and_upgrade_again(empty_app):
    assert tables() == set()
    upgrade()
    assert tables() == set(db.metadata.tables)
    downgrade(revision="base")
    assert tables() == set()
    upgrade()
    assert tables() == set(db.metadata.tables)


def test_the_migrations_produce_exactly_the_models_schema(empty_app):
    upgrade()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_the_audit_log_refuses_updates_and_deletes_after_migration(empty_app):
    upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_log (at, action, object_type) VALUES (CURRENT_TIMESTAMP, 'x', 'y')"))
    for statement in ("UPDATE audit_log SET action = 'z'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError), db.engine.begin() as conn:
            conn.execute(sa.text(statement))
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT action FROM audit_log")).scalar_one() == "x"


def test_upgrading_a_database_with_data_keeps_it_and_anchors_every_archive(empty_app):
    upgrade(revision="0005")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO region (id, code, name, level, path, depth, created_at) "
            "VALUES (1, '430922', '桃江县', 'county', '/1/', 0, '2026-11-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO users (id, name, phone, region_id, volunteer_no, password_hash, active, token_version, "
            "failed_logins, consent_public_name, guardian_consent, created_at) "
            "VALUES (1, '张三', '13900000000', 1, 'V1', 'x', true, 0, 0, false, false, '2026-11-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO account (id, kind, owner_type, owner_id, balance, created_at) "
            "VALUES (1, 'resident', 'user', 1, 10, '2026-11-01 00:00:00'), "
            "(2, 'issuer', 'region', 1, -10, '2026-11-01 00:00:00')"
        )
        # Rows that reference the account table, which the migration rebuilds on SQLite.
        conn.exec_driver_sql(
            "INSERT INTO transfer (id, amount, from_account_id, to_account_id, kind, idempotency_key, fingerprint, "
            "created_at) VALUES (1, 10, 2, 1, 'service', 'k', 'f', '2026-11-01 00:00:00')"
        )
        for seq, digest in ((1, "a" * 64), (2, "b" * 64)):
            conn.exec_driver_sql(
                "INSERT INTO archive_entry (user_id, seq, kind, occurred_at, recorded_at, summary, points, "
                f"service_minutes, manual, prev_hash, hash) VALUES (1, {seq}, 'service', '2026-11-01 00:00:00', "
                f"'2026-11-01 00:00:00', 'x', 0, 0, false, '{'0' * 64}', '{digest}')"
            )
    upgrade()
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT archive_count, archive_head, debt FROM account WHERE id = 1").one()
    assert tuple(row) == (2, "b" * 64, 0)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM transfer").scalar() == 1
