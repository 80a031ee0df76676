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

from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from typing import IO, Any

from sqlalchemy.exc import IntegrityError

from community.importers import KINDS, Importer, Report, Row, Scope
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
    """Check (and unless `dry_run`, apply) the rows of `stream`; the report says what happened."""
    importer_class = kind_of(kind)
    scope = Scope(None)
    if actor is not None:
        authorize(actor, "admin")
        scope = Scope(admin_regions(actor, roles=("admin",)))
    sheet = sheets.read(stream)
    columns = _columns(sheet.headers, importer_class)
    report = Report(kind=kind, dry_run=dry_run)
    if dry_run:
        _feed(importer_class(db.session, scope, report, now=now), sheet, columns, write=False, progress=progress)
        db.session.commit()  # it only read: end its read transaction, keeping what it loaded
        return report
    try:
        with unit_of_work() as session:
            _feed(importer_class(session, scope, report, now=now), sheet, columns, write=True, progress=progress)
            if report.error_count:
                raise _Refused()
            audit.record(
                "import.apply",
                "import",
                kind,
                actor=actor,
                after=_summary(report, filename),
                region_id=_region_of(scope, actor),
                now=now,
            )
    except _Refused:
        report.created = report.updated = report.skipped = 0
        with unit_of_work():
            audit.record(
                "import.refused",
                "import",
                kind,
                actor=actor,
                after=_summary(report, filename),
                region_id=_region_of(scope, actor),
                now=now,
            )
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
    importer: Importer, sheet: sheets.Sheet, columns: dict[str, int], *, write: bool, progress: Progress | None
) -> None:
    report = importer.report
    for batch in _batches(sheet, columns):
        report.rows += len(batch)
        importer.check(batch)
        # Once a row is refused nothing will be kept: the rest is only checked, not written.
        if write and not report.error_count:
            importer.write()
        if progress is not None:
            progress(report.rows, sheet.total)


def _summary(report: Report, filename: str) -> dict[str, Any]:
    return {"kind": report.kind, "file": filename[:128], **report.counts()}


def _region_of(scope: Scope, actor: User | None) -> int | None:
    if actor is None:
        return None
    roots = admin_regions(actor, roles=("admin",))
    return roots[0].id if roots else None


def as_dict(report: Report) -> dict[str, Any]:
    """The report as API.md gives it (and a few more fields: dry_run, applied, error_count)."""
    out = asdict(report)
    out["errors"] = [asdict(e) for e in report.errors]
    return out
