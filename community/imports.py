"""Bulk import (API.md "Administration and onboarding"): a spreadsheet of regions, departments,
households or residents, checked row by row and applied all or nothing.

`run()` serves the API, the admin page and `flask import` alike. It streams the file
(`core.sheets`) in batches of BATCH rows; each batch is checked with one lookup per kind of
existing row (`community.importers`). A dry run (the default) only reads. A real run is one unit
of work: every batch is written as it is checked, and if any row of the file is refused the whole
transaction is rolled back, so a file is applied entirely or not at all; running the same file
again creates nothing and says so (updated and skipped counts). An imported resident has no
password until they register with their phone number and the same name (`accounts.register`).
Every real run is audited with who, what kind and the counts; an admin imports only inside the
regions they administer (a row outside is an error), the system (CLI) anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict
from datetime import datetime
from typing import IO, Any

from sqlalchemy.exc import IntegrityError

from community.importers import KINDS
from community.importing import Importer, Report, Row, Scope
from community.models import User
from community.services import admin_regions
from core import audit, sheets
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid
from core.security import authorize

BATCH = 1000
Progress = Callable[[int, int | None], None]


class _Refused(Exception):
    """Raised inside the unit of work to roll back a real run that found a bad row."""


def kind_of(value: str | None) -> type[Importer]:
    importer = KINDS.get((value or "").strip())
    if importer is None:
        text = "导入类型须为 " + "、".join(KINDS)
        raise Invalid("import_kind_invalid", text, errors={"kind": [text]})
    return importer


def template(kind: str) -> bytes:
    """An empty .xlsx with the kind's headers (the optional ones last)."""
    return sheets.xlsx(kind_of(kind).columns(), title=kind)


def run(
    kind: str,
    stream: IO[bytes],
    *,
    actor: User | None,
    dry_run: bool = True,
    now: datetime,
    filename: str = "",
    progress: Progress | None = None,
) -> Report:
    """Check (and unless `dry_run`, apply) the rows of `stream`; the report says what happened.
    `progress(done, total)` is called after each batch (`total` estimated, None if unknown)."""
    work = steps(kind, stream, actor=actor, dry_run=dry_run, now=now, filename=filename)
    while True:
        try:
            done, total = next(work)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)


def steps(
    kind: str, stream: IO[bytes], *, actor: User | None, dry_run: bool, now: datetime, filename: str = ""
) -> Generator[tuple[int, int | None], None, Report]:
    """`run` one batch at a time: yields (rows done, rows estimated) after each batch and returns
    the report. A page streams these to its progress bar; if the consumer stops before the end
    (the browser went away), the unit of work rolls back: nothing of the file is kept."""
    importer_class = kind_of(kind)
    scope = Scope(None)
    if actor is not None:
        authorize(actor, "admin")
        scope = Scope(admin_regions(actor, roles=("admin",)))
    sheet = sheets.read(stream)
    try:
        return (yield from _apply(importer_class, sheet, scope, actor=actor, dry_run=dry_run, now=now,
                                  filename=filename))  # fmt: skip
    finally:
        sheet.close()


def _apply(
    importer_class: type[Importer],
    sheet: sheets.Sheet,
    scope: Scope,
    *,
    actor: User | None,
    dry_run: bool,
    now: datetime,
    filename: str,
) -> Generator[tuple[int, int | None], None, Report]:
    kind = importer_class.kind
    columns = _columns(sheet.headers, importer_class)
    report = Report(kind=kind, dry_run=dry_run)
    if dry_run:
        yield from _feed(importer_class(db.session, scope, report, now=now), sheet, columns, write=False)
        db.session.commit()  # it only read: end its read transaction, keeping what it loaded
        return report
    summary = {"actor": actor, "region_id": _region_of(actor), "now": now}
    try:
        with unit_of_work() as session:
            yield from _feed(importer_class(session, scope, report, now=now), sheet, columns, write=True)
            if report.error_count:
                raise _Refused()
            audit.record("import.apply", "import", kind, after=_summary(report, filename), **summary)
    except _Refused:
        report.created = report.updated = report.skipped = 0
        with unit_of_work():
            audit.record("import.refused", "import", kind, after=_summary(report, filename), **summary)
        return report
    except IntegrityError as exc:
        # Someone registered a phone, or another import wrote a row, while this one ran: the
        # database's unique indexes refused the second writer; nothing of this file was kept.
        raise Conflict("import_conflict") from exc
    report.applied = True
    return report


def _columns(headers: list[str], importer_class: type[Importer]) -> dict[str, int]:
    """Where each known column is (the first of a repeated header); extra columns are ignored."""
    where: dict[str, int] = {}
    for index, header in enumerate(headers):
        name = header.replace("\ufeff", "").strip().rstrip("*＊").strip()
        if name in importer_class.columns():
            where.setdefault(name, index)
    missing = [c for c in importer_class.required if c not in where]
    if missing:
        text = "文件第 1 行缺少列：" + "、".join(missing) + "（列名须为：" + "、".join(importer_class.columns()) + "）"
        raise Invalid("import_columns_missing", text, errors={"file": [text]})
    return where


def _batches(sheet: sheets.Sheet, columns: dict[str, int]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for number, cells in sheet.rows():
        values = {name: (cells[i] if i < len(cells) else "") for name, i in columns.items()}
        batch.append(Row(number, values))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _feed(
    importer: Importer, sheet: sheets.Sheet, columns: dict[str, int], *, write: bool
) -> Iterator[tuple[int, int | None]]:
    report = importer.report
    for batch in _batches(sheet, columns):
        report.rows += len(batch)
        importer.check(batch)
        # Once a row is refused nothing will be kept: the rest is only checked, not written.
        if write and not report.error_count:
            importer.write()
        yield report.rows, sheet.total


def _summary(report: Report, filename: str) -> dict[str, Any]:
    return {"kind": report.kind, "file": filename[:128], **report.counts()}


def _region_of(actor: User | None) -> int | None:
    """The region an import's audit entry is filed under: the actor's first admin root."""
    roots = admin_regions(actor, roles=("admin",)) if actor is not None else []
    return roots[0].id if roots else None


def as_dict(report: Report) -> dict[str, Any]:
    """The report as API.md gives it (and a few more fields: dry_run, applied, error_count)."""
    out = asdict(report)
    out["errors"] = [asdict(e) for e in report.errors]
    return out
