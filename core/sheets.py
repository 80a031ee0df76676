"""Spreadsheets in and out: read the rows of an .xlsx or .csv file as text, one at a time, and
write a one-sheet .xlsx (an import template). Knows no domain and no database.

Files come from Excel as offices use it in China: .xlsx, or .csv saved as UTF-8 (with or without a
byte-order mark) or as GBK. The format is told by the content, never by the file name; the text
encoding of a .csv by reading it through once as UTF-8 (a GBK file almost never reads as valid
UTF-8), which also counts its lines for a progress bar. Rows are streamed, so a file of a
million rows takes no more memory than one of a hundred: openpyxl's read-only mode for .xlsx, the
csv module over a text wrapper for .csv. Every cell comes back as a stripped string ("" when
empty); a number Excel stored for a phone or a code comes back as its digits.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, Any

from core.errors import Invalid

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHUNK = 1 << 20
# GB 18030 is a superset of GBK (and of GB 2312): it reads every file Excel writes as "GBK".
_GBK = "gb18030"


class UnreadableFile(Invalid):
    """The file is neither a readable .xlsx nor a .csv in UTF-8 or GBK."""

    def __init__(self, detail: str = "无法读取该文件，请上传 .xlsx 或 .csv（UTF-8 或 GBK 编码）文件") -> None:
        super().__init__("import_file_unreadable", detail, errors={"file": [detail]})


@dataclass
class Sheet:
    """The rows of a file: `headers` (row 1) and `rows()`, yielding (row number, cells) for each
    later row that is not blank; `total` estimates how many rows follow the header (for progress).
    `close()` lets go of the file (the caller's stream stays open: it is the caller's)."""

    format: str
    headers: list[str]
    total: int | None
    _rows: Iterator[tuple[int, list[str]]]
    _close: Callable[[], Any]
    encoding: str | None = None

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        return self._rows

    def close(self) -> None:
        self._close()


def read(stream: IO[bytes]) -> Sheet:
    """Open `stream` (binary, seekable) as a sheet: its header row read, the rest to stream."""
    start = stream.read(4)
    stream.seek(0)
    if start.startswith(b"PK\x03\x04"):
        return _read_xlsx(stream)
    return _read_csv(stream)


def cell_text(value: Any) -> str:
    """A cell as text: integers and whole floats as digits (Excel keeps a typed phone as a number),
    dates as ISO, everything stripped of surrounding blanks (the full-width space too)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


# CSV --------------------------------------------------------------------------------------------


def detect_encoding(stream: IO[bytes]) -> tuple[str, int]:
    """The encoding of a text file (utf-8-sig, utf-8 or GBK) and how many lines it has; the
    stream is read once and rewound."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = stream.read(3)
    encoding = "utf-8-sig" if first == codecs.BOM_UTF8 else "utf-8"
    chunk = first if encoding == "utf-8" else b""
    lines = 0
    last = b""
    utf8 = True
    while True:
        if chunk:
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if last and last != b"\n":
        lines += 1
    stream.seek(0)
    return (encoding if utf8 else _GBK), lines


def _read_csv(stream: IO[bytes]) -> Sheet:
    encoding, lines = detect_encoding(stream)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    # Excel writes commas; a sheet saved by other programs as "CSV" sometimes holds tabs or
    # semicolons: the header line tells which.
    try:
        first_line = text.readline()
    except UnicodeDecodeError as exc:  # neither UTF-8 nor GBK: not a spreadsheet at all
        text.detach()
        raise UnreadableFile() from exc
    text.seek(0)
    delimiter = next((d for d in ",\t;" if d in first_line), ",")
    reader = csv.reader(text, csv.excel, delimiter=delimiter)
    try:
        header = next(reader, [])
    except (csv.Error, UnicodeDecodeError) as exc:
        text.detach()
        raise UnreadableFile() from exc
    # Detached, not closed: closing the wrapper would close the caller's stream.
    return Sheet("csv", [cell_text(h) for h in header], max(lines - 1, 0), _csv_rows(reader), text.detach, encoding)


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    # A row's number is its record's, as Excel numbers it: a quoted cell may span several lines.
    number = 1
    try:
        for number, cells in enumerate(reader, start=2):
            if any(c.strip() for c in cells):
                yield number, [c.strip() for c in cells]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"第 {number + 1} 行无法读取，请检查文件的编码和格式") from exc


# XLSX -------------------------------------------------------------------------------------------


def _read_xlsx(stream: IO[bytes]) -> Sheet:
    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, ())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, IndexError, TypeError) as exc:
        raise UnreadableFile() from exc
    try:
        total = max((sheet.max_row or 0) - 1, 0) or None
    except (TypeError, ValueError):
        total = None
    return Sheet("xlsx", [cell_text(h) for h in header], total, _xlsx_rows(rows), book.close)


def _xlsx_rows(rows: Iterator[Sequence[Any]]) -> Iterator[tuple[int, list[str]]]:
    try:
        for number, values in enumerate(rows, start=2):
            cells = [cell_text(v) for v in values]
            if any(cells):
                yield number, cells
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile() from exc


def xlsx(headers: Sequence[str], rows: Sequence[Sequence[Any]] = (), *, title: str = "Sheet1") -> bytes:
    """A one-sheet workbook: `headers` in bold on row 1, then `rows`; every column is text, so
    that Excel keeps the leading zeros of a code and does not turn an ID number into 4.3E+17."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, header in enumerate(headers, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = max(12, len(header) * 3)
        sheet.column_dimensions[letter].number_format = "@"
    for row in rows:
        sheet.append([str(v) for v in row])
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
