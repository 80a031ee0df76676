"""Bulk rows into any table, fast: PostgreSQL COPY (psycopg `cursor.copy`), SQLite executemany.

Rows are plain tuples in the order of the columns named; values are Python values (aware
datetimes, dicts for JSON columns), converted here for each engine: COPY gets JSON as text, SQLite
gets what SQLAlchemy's column types bind. Ids are given by the caller (`next_id`), so rows of one
table can name rows of another before either is written; `finish` moves PostgreSQL's sequences
past them. Everything runs in the caller's transaction; this module never commits.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.db import db


class Writer:
    def __init__(self, session: Session):
        self.connection = session.connection()
        self.postgresql = self.connection.dialect.name == "postgresql"
        self.rows: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.touched: set[str] = set()
        if self.postgresql:
            # A seed is rebuilt from scratch if lost: do not wait for the disk at each commit.
            self.connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    def table(self, name: str) -> sa.Table:
        return db.metadata.tables[name]

    def next_id(self, name: str) -> int:
        table = self.table(name)
        return int(self.connection.scalar(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)))) + 1

    def write(self, name: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        """Insert `rows` (tuples in the order of `columns`) into table `name`; returns how many."""
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return 0
        table = self.table(name)
        started = time.perf_counter()
        if self.postgresql:
            self._copy(table, columns, rows)
        else:
            statement = table.insert()
            self.connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
        self.seconds[name] += time.perf_counter() - started
        self.rows[name] += len(rows)
        self.touched.add(name)
        return len(rows)

    def _copy(self, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> None:
        json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)]
        quoted = ", ".join(f'"{c}"' for c in columns)
        cursor = self.connection.connection.driver_connection.cursor()
        try:
            with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                if json_at:
                    for row in rows:
                        row = list(row)
                        for i in json_at:
                            if row[i] is not None:
                                row[i] = json.dumps(row[i], ensure_ascii=False)
                        copy.write_row(row)
                else:
                    for row in rows:
                        copy.write_row(row)
        finally:
            cursor.close()

    def update(self, name: str, key: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Set `columns` of the rows whose `key` is each tuple's first value (the rest in order)."""
        if not rows:
            return
        table = self.table(name)
        started = time.perf_counter()
        if self.postgresql:
            # One COPY into a scratch table, then one UPDATE … FROM: a row at a time would take minutes.
            scratch = f"_bulk_{name}"
            quoted = ", ".join(f'"{c}"' for c in (key, *columns))
            self.connection.exec_driver_sql(
                f'CREATE TEMP TABLE "{scratch}" AS SELECT {quoted} FROM "{name}" WITH NO DATA'
            )
            cursor = self.connection.connection.driver_connection.cursor()
            try:
                with cursor.copy(f'COPY "{scratch}" ({quoted}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
            assignments = ", ".join(f'"{c}" = s."{c}"' for c in columns)
            self.connection.exec_driver_sql(
                f'UPDATE "{name}" AS t SET {assignments} FROM "{scratch}" AS s WHERE t."{key}" = s."{key}"'
            )
            self.connection.exec_driver_sql(f'DROP TABLE "{scratch}"')
        else:
            statement = (
                table.update()
                .where(table.c[key] == sa.bindparam("_key"))
                .values({c: sa.bindparam(f"_{c}") for c in columns})
            )
            self.connection.execute(
                statement,
                [{"_key": row[0], **{f"_{c}": v for c, v in zip(columns, row[1:], strict=True)}} for row in rows],
            )
        self.seconds[f"{name} (update)"] += time.perf_counter() - started
        self.rows[f"{name} (update)"] += len(rows)

    def finish(self) -> None:
        """Move PostgreSQL's id sequences past the ids given here (SQLite takes max(id) + 1 itself)."""
        if not self.postgresql:
            return
        for name in sorted(self.touched):
            self.connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), (SELECT MAX(id) FROM \"{name}\"))"
            )

    def report(self) -> list[str]:
        lines = []
        for name in sorted(self.rows, key=lambda n: -self.rows[n]):
            seconds = self.seconds[name]
            rate = self.rows[name] / seconds if seconds else float("inf")
            lines.append(f"  {name:28} {self.rows[name]:>10,} rows  {seconds:7.1f} s writing  {rate:>10,.0f} rows/s")
        return lines
