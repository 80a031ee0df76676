"""Moving up and backing up: `flask db copy --to URL`, `flask db backup FILE`, `flask db restore FILE`.

They join Flask-Migrate's `flask db` commands (docs/deploy.md). `copy` moves a whole installation
(SQLite into PostgreSQL) table by table in foreign-key order, a page at a time; `backup` takes a
consistent copy while the app runs (SQLite's online backup API, `pg_dump` custom format); `restore`
puts one back into an empty database, or over a full one with `--force`. Copy and restore end by
running `flask db upgrade`/`flask ledger check` against the database they wrote, in a process of
its own, so the target is migrated and checked exactly as a deployment would be.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup, ScriptInfo
from flask_migrate.cli import db as migrate_cli
from sqlalchemy.pool import NullPool

from core.config import ROOT, normalize_database_url
from core.db import db

db_cli = AppGroup("db", help=migrate_cli.help, params=list(migrate_cli.params), callback=migrate_cli.callback)
for _name, _command in migrate_cli.commands.items():
    db_cli.add_command(_command, _name)

PAGE = 1000
BLOB_PAGE = 20  # rows of a table with binary columns (photos of up to 8 MB) a page
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
PG_CLIENT = "PostgreSQL 客户端程序（Debian/Ubuntu: apt-get install postgresql-client，大版本不低于服务器）"


def init_app(app: Flask) -> None:
    """`flask db` becomes Flask-Migrate's commands and these three (it replaces Migrate's group)."""
    app.cli.add_command(db_cli)


# flask db copy ------------------------------------------------------------------------------------


@db_cli.command("copy")
@click.option("--to", "target_url", required=True, help="目标数据库 URL，如 postgresql://user@host/moralcredit")
@click.option("--page", default=PAGE, type=click.IntRange(1, 100_000), help="每批复制的行数")
def copy_command(target_url: str, page: int) -> None:
    """Copy this installation into an empty database (SQLite into PostgreSQL), then check its books."""
    source = db.engine
    target_url = normalize_database_url(target_url)
    try:
        target = sa.create_engine(target_url, poolclass=NullPool)
    except (sa.exc.ArgumentError, ImportError) as error:
        raise click.ClickException(f"目标数据库 URL 无法识别：{error}") from error
    if _same_database(source.url, target.url):
        raise click.ClickException("目标与本系统当前使用的是同一个数据库")
    head = _head()
    with source.connect() as conn:
        if _revision(conn) != head:
            raise click.ClickException(f"源数据库不在最新版本 {head}：请先运行 flask db upgrade")
    try:
        with target.connect() as conn:
            existing = sa.inspect(conn).get_table_names()
    except sa.exc.OperationalError as error:
        raise click.ClickException(f"连不上目标数据库：{_first_line(error)}") from error
    if existing:
        raise click.ClickException(
            f"目标数据库已有 {len(existing)} 张表，不是空的：db copy 只写入新建的空数据库（createdb），表由它自己建；"
            "若是上次复制失败留下的库，删除重建即可（dropdb、createdb）"
        )
    _flask(["db", "upgrade"], target.url, quiet=True)
    click.echo(f"the target is at revision {head}")
    try:
        counts = _copy(source, target, page=page)
    finally:
        target.dispose()
    click.echo(f"copied {sum(counts.values())} rows in {len(counts)} tables:")
    for name, count in counts.items():
        click.echo(f"  {name:28} {count}")
    click.echo("checking the books on the target (flask ledger check)")
    _flask(["ledger", "check"], target.url, what="目标数据库的账本检查未通过（见上），复制的数据已提交，请勿启用")


def _copy(source: sa.Engine, target: sa.Engine, *, page: int) -> dict[str, int]:
    """Every table, in one read snapshot of the source and one write transaction on the target."""
    tables = db.metadata.sorted_tables
    with source.connect() as src, target.connect() as dst:
        if src.dialect.name == "postgresql":
            src = src.execution_options(isolation_level="REPEATABLE READ")
        with src.begin():
            unknown = set(sa.inspect(src).get_table_names()) - {t.name for t in tables} - {"alembic_version"}
            if unknown:
                raise click.ClickException(f"源数据库有本系统不认识的表：{', '.join(sorted(unknown))}")
            counts = {t.name: _count(src, t) for t in tables}
            with dst.execution_options(sqlite_immediate=True).begin():
                if _revision(dst) != _head():
                    raise click.ClickException("目标数据库迁移后仍不在最新版本")
                _refuse_insert_triggers(dst)
                for table in reversed(tables):  # what the migrations wrote (the deed catalogue) gives way
                    if _count(dst, table):
                        dst.execute(table.delete())
                with click.progressbar(length=sum(counts.values()), label="复制", item_show_func=lambda n: n) as bar:
                    for table in tables:
                        size = BLOB_PAGE if any(isinstance(c.type, sa.LargeBinary) for c in table.c) else page
                        for rows in _ordered_pages(src, table, size):
                            dst.execute(table.insert(), rows)
                            bar.update(len(rows), table.name)
                if dst.dialect.name == "postgresql":
                    _reset_sequences(dst, tables)
                copied = {t.name: _count(dst, t) for t in tables}
                if copied != counts:
                    wrong = [f"{n} {counts[n]}→{copied[n]}" for n in counts if counts[n] != copied[n]]
                    raise click.ClickException(f"复制后行数不符，已撤销：{', '.join(wrong)}")
    return counts


def _ordered_pages(conn: sa.Connection, table: sa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    """The rows of `table` by primary key, a page at a time (keyset: no cursor stays open). A table
    that refers to itself (a region's parent) yields each row only after the row it refers to."""
    key = list(table.primary_key.columns)
    parents = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    last: tuple | None = None
    waiting: dict[Any, dict[str, Any]] = {}  # rows whose parent comes later in key order
    while True:
        query = sa.select(table).order_by(*key).limit(size)
        if last is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*last)) if len(key) > 1 else query.where(key[0] > last[0])
        rows = [dict(row) for row in conn.execute(query).mappings()]
        if not rows:
            break
        last = tuple(rows[-1][c.name] for c in key)
        full = len(rows) == size
        if parents:
            rows = _parents_first(rows, parents, key[0].name, last[0], waiting)
        if rows:
            yield rows
        if not full:
            break
    if waiting:
        raise click.ClickException(f"{table.name} 有 {len(waiting)} 行指向不存在的行，无法复制")


def _parents_first(
    rows: list[dict[str, Any]], parents: list[str], key: str, last: Any, waiting: dict[Any, dict[str, Any]]
) -> list[dict[str, Any]]:
    """This page's rows whose parents are written (or come earlier in it), and rows that waited
    for a parent in this page; the rest wait. Every key up to `last` is written unless waiting."""
    ready, done, page = [], set(), {row[key] for row in rows}

    def placed(parent: Any) -> bool:
        return parent is None or parent in done or (parent <= last and parent not in waiting and parent not in page)

    for row in [*rows, *waiting.values()]:
        waiting[row[key]] = row
    progress = True
    while progress:
        progress = False
        for ident, row in list(waiting.items()):
            if all(placed(row[p]) or row[p] == ident for p in parents):
                ready.append(waiting.pop(ident))
                done.add(ident)
                progress = True
    return ready


def _refuse_insert_triggers(dst: sa.Connection) -> None:
    """The append-only tables refuse UPDATE and DELETE, never INSERT; a trigger that acts on INSERT
    would change what is copied, so the copy stops instead of guessing."""
    if dst.dialect.name == "postgresql":
        found = dst.execute(
            sa.text(
                "SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND (t.tgtype & 4) <> 0 AND n.nspname = current_schema()"
            )
        ).scalars()
    else:
        found = dst.execute(
            sa.text("SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%INSERT%'")
        ).scalars()
    names = list(found)
    if names:
        raise click.ClickException(f"目标数据库有 INSERT 触发器，复制会改变数据：{', '.join(names)}")


def _reset_sequences(dst: sa.Connection, tables: list[sa.Table]) -> None:
    """Identity sequences continue after the largest copied id (inserts with ids leave them at 1)."""
    for table in tables:
        for column in table.primary_key.columns:
            sequence = dst.scalar(sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name})
            if sequence:
                dst.execute(
                    sa.text(f'SELECT setval(:s, COALESCE(MAX("{column.name}"), 0) + 1, false) FROM "{table.name}"'),
                    {"s": sequence},
                )


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return conn.scalar(sa.select(sa.func.count()).select_from(table))


def _same_database(a: sa.URL, b: sa.URL) -> bool:
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return bool(a.database) and bool(b.database) and Path(a.database).resolve() == Path(b.database).resolve()
    return (a.host or "", a.port or 5432, a.database) == (b.host or "", b.port or 5432, b.database)


# flask db backup / restore ------------------------------------------------------------------------


@db_cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="覆盖已有的文件")
def backup_command(file: str, force: bool) -> None:
    """Back up the database to FILE while the app runs (SQLite: a database file; PostgreSQL: pg_dump -Fc)."""
    path = Path(file)
    if path.exists() and not force:
        raise click.ClickException(f"{file} 已存在：换一个文件名，或加 --force 覆盖")
    url = db.engine.url
    with db.engine.connect() as conn:
        revision = _revision(conn)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if url.get_backend_name() == "sqlite":
            _sqlite_backup(_sqlite_path(url), partial)
        elif url.get_backend_name() == "postgresql":
            _run([_tool("pg_dump"), "--format=custom", "--file", str(partial), "--dbname", _conninfo(url)], url)
        else:
            raise click.ClickException(f"不支持备份 {url.get_backend_name()} 数据库")
        partial.replace(path)  # a backup file is whole or absent
    finally:
        partial.unlink(missing_ok=True)
    click.echo(
        f"backed up {url.get_backend_name()} database (revision {revision}) to {file}: {path.stat().st_size} bytes"
    )


def _sqlite_backup(source: str, destination: Path) -> None:
    """One backup step over the whole file: a read transaction, so a consistent snapshot, and in WAL
    mode the app keeps writing meanwhile (a stepwise backup would restart on every write)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(destination)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise click.ClickException("备份文件完整性检查失败")
    finally:
        dst.close()
        src.close()


@db_cli.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="替换数据库现有的全部内容")
def restore_command(file: str, force: bool) -> None:
    """Restore a backup into this app's database (empty, or anything with --force), then check the books."""
    url = db.engine.url
    kind = _backup_kind(Path(file))
    backend = url.get_backend_name()
    if kind != backend:
        hint = "；从 SQLite 迁往 PostgreSQL 请先恢复到 SQLite，再用 flask db copy" if kind == "sqlite" else ""
        raise click.ClickException(f"{file} 是 {kind} 的备份，而本系统用的是 {backend} 数据库{hint}")
    with db.engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
    if tables and not force:
        raise click.ClickException(f"数据库不是空的（{len(tables)} 张表）：恢复会替换其中全部数据，确认请加 --force")
    revision = _sqlite_revision(file) if kind == "sqlite" else _dump_revision(file, url)
    head = _head()
    if revision not in _known_revisions():
        raise click.ClickException(
            f"备份的数据库版本 {revision} 比本程序新（或不是本系统的备份），请用对应版本的程序恢复"
        )
    db.session.remove()
    db.engine.dispose()  # no connection of ours may hold the old tables
    if kind == "sqlite":
        _sqlite_restore(Path(file), _sqlite_path(url))
    else:
        _pg_restore(Path(file), url, tables)
    db.engine.dispose()
    click.echo(f"restored {file} (revision {revision}) into the {backend} database")
    if revision != head:
        click.echo(f"the backup is at revision {revision}: run flask db upgrade, then flask ledger check")
        return
    _flask(["ledger", "check"], url, what="恢复后的账本检查未通过（见上）")


def _sqlite_restore(backup: Path, target: str) -> None:
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        dst.execute("PRAGMA busy_timeout = 30000")
        src.backup(dst)  # page by page into the live file, under its write lock: readers see old or new
    finally:
        dst.close()
        src.close()


def _pg_restore(dump: Path, url: sa.URL, tables: list[str]) -> None:
    """pg_restore's SQL streamed into psql inside one transaction, committed only if pg_restore read
    the whole archive: the old tables go and the dump's come in, or nothing changes. Memory stays
    flat however large the dump."""
    restore, psql = _tool("pg_restore"), _tool("psql")
    drops = "".join(f'DROP TABLE IF EXISTS "{name}" CASCADE;\n' for name in tables)
    command = [restore, "--no-owner", "--no-privileges", "--clean", "--if-exists", "--file", "-", str(dump)]
    reader_status = None
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        with subprocess.Popen(
            [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--dbname", _conninfo(url)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env={**_pg_env(url), "PGOPTIONS": "-c client_min_messages=warning"},
        ) as loader:
            try:
                loader.stdin.write(b"BEGIN;\n" + drops.encode())
                with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=restore_err) as reader:
                    shutil.copyfileobj(reader.stdout, loader.stdin, 1 << 20)
                reader_status = reader.returncode
                loader.stdin.write(b"COMMIT;\n" if reader_status == 0 else b"ROLLBACK;\n")
                loader.stdin.close()
            except BrokenPipeError:  # psql stopped at an error, and its transaction ended with it
                with contextlib.suppress(BrokenPipeError):
                    loader.stdin.close()
        if reader_status != 0:
            restore_err.seek(0)
            raise click.ClickException(
                f"pg_restore 读不了 {dump}，数据库未改变：{_first_line(restore_err.read().decode())}"
            )
        if loader.returncode:
            psql_err.seek(0)
            raise click.ClickException(f"恢复失败，数据库未改变：{_first_line(psql_err.read().decode())}")


def _backup_kind(path: Path) -> str:
    with path.open("rb") as stream:
        head = stream.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise click.ClickException(f"{path} 不是本系统的备份（既不是 SQLite 数据库，也不是 pg_dump 自定义格式）")


def _sqlite_revision(file: str) -> str | None:
    conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise click.ClickException(f"{file} 已损坏（完整性检查失败），数据库未改变")
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise click.ClickException(f"{file} 已损坏或不完整，数据库未改变：{error}") from error
    finally:
        conn.close()


def _dump_revision(file: str, url: sa.URL) -> str | None:
    """The alembic_version row of a pg_dump archive, read without restoring it."""
    out = subprocess.run(
        [_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file", "-", file],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise click.ClickException(f"{file} 已损坏或不完整，数据库未改变：{_first_line(out.stderr)}")
    lines = out.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and i + 1 < len(lines):
            return lines[i + 1].strip()
    return None


# helpers ------------------------------------------------------------------------------------------


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(current_app.extensions["migrate"].directory).get_current_head()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory(current_app.extensions["migrate"].directory).walk_revisions()}


def _revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))


def _sqlite_path(url: sa.URL) -> str:
    if not url.database or url.database == ":memory:":
        raise click.ClickException("内存中的 SQLite 数据库无法备份或恢复")
    return url.database


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise click.ClickException(f"找不到 {name}：请安装{PG_CLIENT}；SQLite 的备份与恢复不需要它")
    return found


def _conninfo(url: sa.URL) -> str:
    """A libpq URI for the PostgreSQL tools; the password goes by PGPASSWORD, never on the command line."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _pg_env(url: sa.URL) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": url.password} if url.password else dict(os.environ)


def _run(command: list[str], url: sa.URL) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=_pg_env(url), check=False)
    if done.returncode:
        raise click.ClickException(f"{Path(command[0]).name} 失败：{_first_line(done.stderr)}")


def _flask(args: list[str], url: sa.URL, what: str | None = None, *, quiet: bool = False) -> None:
    """Run `flask ARGS` against the database at `url` in a process of its own, echoing its output
    (when `quiet`, only if it fails)."""
    info = click.get_current_context().find_object(ScriptInfo)
    app_path = (info.app_import_path if info else None) or os.environ.get("FLASK_APP") or str(ROOT / "wsgi.py")
    env = {
        **os.environ,
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "MORALCREDIT_ENV": current_app.config["ENV_NAME"],
        "MORALCREDIT_SCHEDULER": "off",
        "SECRET_KEY": current_app.config["SECRET_KEY"],
    }
    with subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", app_path, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as child:
        lines = []
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if not quiet:
                click.echo(lines[-1])
    if child.returncode:
        if quiet:
            click.echo("\n".join(lines[-20:]))
        raise click.ClickException(what or f"flask {' '.join(args)} 在目标数据库上失败（见上）")


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""
