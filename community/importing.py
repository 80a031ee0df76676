"""The machinery every kind of import shares (`community.importers` has the four kinds): the
report and its row errors, a row, the actor's scope, the region index, and the `Importer` base
with its checks of text, duplicates and regions, and bulk writes.

What earlier rows of the file would create is remembered (`RegionIndex` pending places, `seen`
keys), so that a dry run, which writes nothing, refuses exactly what a real run would. Nothing
here commits: writes join the caller's unit of work.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from community.messages import IMPORT_ROW_MESSAGES
from community.models import Region

LEAF_LEVELS = ("village", "community", "grid")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ERRORS = 5000
_PARENT = aliased(Region)


@dataclass
class RowError:
    row: int
    column: str
    code: str
    message: str


@dataclass
class Report:
    """What an import found and did; `errors` lists at most MAX_ERRORS, `error_count` all."""

    kind: str
    dry_run: bool
    rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    applied: bool = False

    def add(self, row: int, column: str, code: str, **values: Any) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            message = IMPORT_ROW_MESSAGES[code].format(column=column, **values)
            self.errors.append(RowError(row, column, code, message))

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "errors": self.error_count,
        }


@dataclass
class Row:
    number: int
    cells: dict[str, str]
    bad: bool = False

    def __getitem__(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass
class Place:
    """A region as an import sees it: one in the database, or one an earlier row will create
    (`id` None until written)."""

    code: str
    level: str
    parent_code: str | None
    in_scope: bool
    name: str = ""
    id: int | None = None
    path: str | None = None
    depth: int = 0
    row: int | None = None


class Scope:
    """Where the actor may import: the subtrees they administer; the system (CLI) anywhere."""

    def __init__(self, roots: Iterable[Region] | None) -> None:
        self.paths = None if roots is None else [r.path for r in roots]

    @property
    def system(self) -> bool:
        return self.paths is None

    def covers(self, path: str | None) -> bool:
        return self.paths is None or (path is not None and any(path.startswith(p) for p in self.paths))


class RegionIndex:
    """Regions by code, looked up a batch at a time and kept (a file names the same grids again
    and again), plus the ones earlier rows of the file will create."""

    def __init__(self, session: Session, scope: Scope) -> None:
        self.session, self.scope = session, scope
        self.places: dict[str, Place | None] = {}

    def load(self, codes: Iterable[str]) -> None:
        wanted = sorted({c for c in codes if c and c not in self.places})
        parent = _PARENT
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for code in chunk:  # asked once: a code absent now is remembered as absent
                self.places[code] = None
            found = self.session.execute(
                sa.select(Region.id, Region.code, Region.name, Region.level, Region.path, Region.depth, parent.code)
                .outerjoin(parent, Region.parent_id == parent.id)
                .where(Region.code.in_(chunk))
            )
            for rid, code, name, level, path, depth, parent_code in found:
                self.places[code] = Place(code, level, parent_code, self.scope.covers(path), name, rid, path, depth)

    def get(self, code: str) -> Place | None:
        return self.places.get(code)

    def add(self, place: Place) -> None:
        self.places[place.code] = place


class Importer(ABC):
    """One kind of row. Subclasses name their columns and implement `check` and `write`."""

    kind: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ()

    def __init__(self, session: Session, scope: Scope, report: Report, *, now: datetime) -> None:
        self.session, self.scope, self.report, self.now = session, scope, report, now
        self.regions = RegionIndex(session, scope)
        self.seen: dict[Any, int] = {}

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        return cls.required + cls.optional

    def fail(self, row: Row, column: str, code: str, **values: Any) -> None:
        row.bad = True
        self.report.add(row.number, column, code, **values)

    def text(self, row: Row, column: str, limit: int, *, required: bool = True) -> str:
        value = row[column]
        if not value:
            if required:
                self.fail(row, column, "required")
        elif len(value) > limit:
            self.fail(row, column, "too_long", limit=limit)
        elif _CONTROL.search(value):
            self.fail(row, column, "bad_text")
        return value

    def once(self, row: Row, column: str, key: Any) -> bool:
        """False (and an error) when an earlier row of the file had the same `key`."""
        first = self.seen.setdefault(key, row.number)
        if first != row.number:
            self.fail(row, column, "duplicate_in_file", first=first)
            return False
        return True

    def leaf_region(self, row: Row, column: str) -> Place | None:
        """The village, community or grid a household or resident row names, in scope."""
        code = row[column]
        place = self.regions.get(code) if code else None
        if not code:
            self.fail(row, column, "required")
        elif place is None:
            self.fail(row, column, "region_not_found", value=code)
        elif place.level not in LEAF_LEVELS:
            self.fail(row, column, "region_level")
        elif not place.in_scope:
            self.fail(row, column, "out_of_scope", value=code)
        else:
            return place
        return None

    def settle(self, row: Row, outcome: str) -> None:
        """Count a row that passed its checks: created, updated or skipped."""
        if row.bad:
            return
        self.report.valid += 1
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)

    @abstractmethod
    def check(self, rows: list[Row]) -> None:
        """Check a batch of rows against the file so far and the database; note each row's fate."""

    @abstractmethod
    def write(self) -> None:
        """Write what the last `check` decided (only called while the file has no error)."""


def insert_rows(session: Session, model: Any, rows: list[dict[str, Any]], *, ids: bool = False) -> list[int]:
    """INSERT `rows` in one executemany (Core, not the ORM: no objects, no identity map); with
    `ids`, the new ids in the order of `rows`."""
    if not rows:
        return []
    table = model.__table__
    if not ids:
        session.execute(table.insert(), rows)
        return []
    return list(session.scalars(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows))


def update_rows(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.update(model), rows)
