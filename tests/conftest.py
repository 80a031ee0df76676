"""Test fixtures: every test runs on SQLite and on PostgreSQL, each with a clean, migrated database.

The schema is made once per backend by the Alembic migrations (never by `create_all`), then each
test starts clean: SQLite copies a pristine database file into place; PostgreSQL truncates every
table. PostgreSQL is used when `TEST_DATABASE_URL` is set or a local server answers; under
`CI=true` it is required, and a missing server fails the run instead of skipping.
"""

from __future__ import annotations

import contextvars
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, has_app_context
from flask.testing import FlaskClient

from core.db import db
from moralcredit import create_app

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("MORALCREDIT_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def pg_test_url() -> str:
    if os.environ.get("TEST_DATABASE_URL"):
        return os.environ["TEST_DATABASE_URL"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/moralcredit_test{worker}"


def _pg_reachable() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def recreate_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # Durability is not what tests measure; commit without waiting for the disk.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')


def migrate(app: Flask, revision: str = "head") -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(revision=revision)
        db.engine.dispose()


class IsolatedClient(FlaskClient):
    """Each request runs in a context of its own, as in production: its own app context, `g` and
    database session, even though the test itself holds an app context to call services."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            # End the test's own read transaction and forget what it loaded, so that it sees what
            # the request committed (SQLite keeps a reader on its snapshot; objects are not expired
            # by commits). Tests write only through services.
            db.session.rollback()
            db.session.expire_all()
        return response


class Backend:
    """One database engine for the session: how to build it and how to wipe it between tests."""

    def __init__(self, name: str, tmp: Path):
        self.name = name
        if name == "sqlite":
            self.path = tmp / "test.db"
            self.pristine = tmp / "pristine.db"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = pg_test_url()
        self.app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": self.url})
        self.app.test_client_class = IsolatedClient
        if name == "postgresql" and not os.environ.get("TEST_DATABASE_URL"):
            recreate_pg_database(self.url)
        migrate(self.app)
        if name == "sqlite":
            shutil.copyfile(self.path, self.pristine)
        with self.app.app_context():
            self.tables = [t.name for t in db.metadata.sorted_tables]
            # What the migrations themselves put in (the deed catalogue): a wiped database gets it
            # back, so every test starts from what `db upgrade` gives a fresh installation.
            with db.engine.connect() as conn:
                seeded = {t: conn.execute(db.metadata.tables[t].select()).mappings().all() for t in self.tables}
            self.seed = {t: [dict(row) for row in rows] for t, rows in seeded.items() if rows}

    def close(self) -> None:
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()

    def reset(self) -> None:
        if has_app_context():
            # Test-client requests share the test's app context, hence its session: end it too.
            db.session.remove()
        with self.app.app_context():
            db.session.remove()
            if self.name == "sqlite":
                db.engine.dispose()
                for suffix in ("-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(self.pristine, self.path)
            else:
                with db.engine.begin() as conn:
                    conn.execute(
                        sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in self.tables) + " RESTART IDENTITY CASCADE")
                    )
                    for name, rows in self.seed.items():
                        conn.execute(db.metadata.tables[name].insert(), rows)
                        if "id" in db.metadata.tables[name].c:
                            sequence = f"pg_get_serial_sequence('{name}', 'id')"
                            conn.execute(sa.text(f'SELECT setval({sequence}, max(id)) FROM "{name}"'))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    name = request.param
    if name == "postgresql" and not os.environ.get("TEST_DATABASE_URL"):
        problem = _pg_reachable()
        if problem:
            if CI:
                pytest.fail(f"PostgreSQL is required under CI=true and is not reachable: {problem}")
            pytest.skip(f"PostgreSQL not reachable ({problem}); set TEST_DATABASE_URL to run these")
    backend = Backend(name, tmp_path_factory.mktemp(name))
    request.addfinalizer(backend.close)
    return backend


@pytest.fixture
def app(backend: Backend) -> Iterator[Flask]:
    backend.reset()
    with backend.app.app_context():
        yield backend.app
        db.session.remove()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def shared_redis(app: Flask) -> Iterator[Any]:
    """Sign-in counts in a real Redis (`TEST_REDIS_URL`), under this worker's own key prefix, wiped
    before and after. Outside CI an unreachable Redis skips the test; under `CI=true` it fails."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if CI:
            pytest.fail(f"Redis is required under CI=true and is not reachable at {TEST_REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {TEST_REDIS_URL} ({exc}); set TEST_REDIS_URL to run these")
    prefix = f"moralcredit_test{os.environ.get('PYTEST_XDIST_WORKER', '')}:"

    def wipe() -> None:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)

    wipe()
    before = {k: app.config[k] for k in ("REDIS_URL", "REDIS_PREFIX")}
    app.config.update(REDIS_URL=TEST_REDIS_URL, REDIS_PREFIX=prefix)
    try:
        yield client
    finally:
        app.config.update(before)
        app.extensions.pop("moralcredit.redis", None)
        wipe()
        client.close()


# Per-backend counts for the closing summary (CI prints how many tests ran on each database) ----

_outcomes: Counter[tuple[str, str]] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if "[" in report.nodeid and "postgresql" in report.nodeid.split("[", 1)[1]:
            where = "postgresql"
        elif "e2e" in report.keywords:
            where = "chromium"
        elif "[" in report.nodeid and "sqlite" in report.nodeid.split("[", 1)[1]:
            where = "sqlite"
        else:
            where = "other"
        _outcomes[(where, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    where_list = sorted({w for w, _ in _outcomes})
    if not where_list:
        return
    terminalreporter.section("tests per database / browser")
    for where in where_list:
        counts = {o: _outcomes[(where, o)] for o in ("passed", "failed", "skipped")}
        terminalreporter.write_line(
            f"{where:11} {counts['passed']:4} passed {counts['failed']:4} failed {counts['skipped']:4} skipped"
        )
