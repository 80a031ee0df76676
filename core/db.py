"""The database handle, the declarative base, common column types and the unit of work.

One unit of work per use case: services write inside `unit_of_work()`, which commits exactly once.
On SQLite every write transaction starts with `BEGIN IMMEDIATE` so that read-then-write sequences
cannot interleave ("database is locked" half-way through otherwise); on PostgreSQL services lock
the rows they change. This module never imports a domain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


# Objects keep their values after a commit: a response is built from what the use case already
# holds, never by reloading every attribute it wrote. Row locks therefore always read fresh
# (`populate_existing`), and a rollback still expires everything.
db = SQLAlchemy(model_class=Base, engine_options={"pool_pre_ping": True}, session_options={"expire_on_commit": False})


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC on every engine (SQLite keeps no offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        # Take transaction control away from pysqlite so that BEGIN is ours (see _sqlite_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "connect")
def _postgresql_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """No server-side prepared statements: psycopg prepares a statement run five times on a
    connection, and PostgreSQL may then keep one generic plan for it, blind to the values (a
    statistics sum went from 0.1 s to 130 s that way). Every statement is planned for its values,
    and a transaction-pooling PgBouncer in front of the database needs nothing more."""
    if type(dbapi_connection).__module__.startswith("psycopg"):
        dbapi_connection.prepare_threshold = None


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn: sa.Connection) -> None:
    if conn.dialect.name == "sqlite":
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class NestedUnitOfWork(RuntimeError):
    """A unit of work was opened while the session held changes it did not start: unsaved objects,
    or statements already written in the open transaction (which a rollback would silently lose)."""


@event.listens_for(Session, "do_orm_execute")
def _note_stray_write(state: Any) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and not state.session.info.get("uow_depth"):
        state.session.info["stray_writes"] = True


@event.listens_for(Session, "after_flush")
def _note_stray_flush(session: Session, flush_context: Any) -> None:
    if not session.info.get("uow_depth"):
        session.info["stray_writes"] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_stray_writes(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop("stray_writes", None)


@contextlib.contextmanager
def unit_of_work(session: Session | None = None) -> Iterator[Session]:
    """Run one use case in one write transaction and commit it once; roll back on any error.

    A read transaction left open by the request (loading the current user, say) is ended first,
    so that the write transaction starts fresh and, on SQLite, takes the write lock up front. It
    wrote nothing, so it ends by a commit, which keeps what it loaded (a rollback would expire the
    current user and make every later access reload it).
    Re-entrant: an inner call joins the outer unit of work.
    """
    session = session or db.session()
    if session.info.get("uow_depth"):
        session.info["uow_depth"] += 1
        try:
            yield session
        finally:
            session.info["uow_depth"] -= 1
        return
    if session.new or session.dirty or session.deleted:
        raise NestedUnitOfWork("unsaved changes outside a unit of work")
    if session.info.get("stray_writes") and session.in_transaction():
        raise NestedUnitOfWork("writes outside a unit of work would be rolled back: run them inside it")
    if session.in_transaction():
        session.commit()
    session.info["uow_depth"] = 1
    try:
        session.connection(execution_options={"sqlite_immediate": True})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info["uow_depth"] = 0


def is_postgresql(session: Session | None = None) -> bool:
    return (session or db.session).get_bind().dialect.name == "postgresql"


def insert_if_absent(
    session: Session, model: Any, values: dict[str, Any], unique: tuple[str, ...], *, returning: bool = False
) -> Any:
    """INSERT the row unless one with the same `unique` columns exists (ON CONFLICT DO NOTHING, on
    PostgreSQL and SQLite alike): the database decides, so two transactions racing to create the
    same row cannot both win. With `returning`, answers the new object (None when the row was
    already there), loaded in the same statement; without it, answers nothing (a driver's row count
    for this statement is not something to decide on)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=list(unique))
    if returning:
        return session.scalars(statement.returning(model)).one_or_none()
    session.execute(statement)
    return None


# Jobs that walk every resident (or every row of a growing table) take this many at a time: each
# page is its own short read, and each page that writes is its own unit of work, so memory and lock
# time stay bounded however large the region grows.
BATCH_SIZE = 2000


def batch_size() -> int:
    """The page size of the app's walks (`JOB_BATCH_SIZE`; tests make it tiny to cross pages)."""
    return int(current_app.config.get("JOB_BATCH_SIZE", BATCH_SIZE)) if has_app_context() else BATCH_SIZE


def keyset_pages(session: Session, statement: sa.Select, key: Any, *, size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    """The rows of `statement` in pages of `size`, ordered by the unique column `key`, which must be
    the first column selected. Each page is a query of its own that starts after the last key of
    the page before (keyset pagination): no server-side cursor stays open, the caller may commit or
    roll back between pages, and rows inserted behind the walk are not visited twice."""
    if size < 1:
        raise ValueError("a page holds at least one row")
    last = None
    while True:
        page = statement.order_by(key).limit(size)
        if last is not None:
            page = page.where(key > last)
        rows = session.execute(page).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1][0]
