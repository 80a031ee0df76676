"""The four kinds of rows an office imports (regions, departments, households, residents): how a
row is checked, and how a batch of checked rows is written. `community.imports` runs them.

Each kind checks a batch of rows at once: it looks up, in one query per batch, the rows that
already exist (by region code, department name, household number, phone, ID digest), then
decides for each row: create, update, skip (already as the file says) or refuse (an error with
its row, column, stable code and Chinese text). What earlier rows of the file would create is
remembered (`RegionIndex` pending places, `seen` keys), so a dry run, which writes nothing,
refuses exactly what a real run would. Writes are bulk statements per batch inside the caller's
unit of work; nothing here commits, and nothing here knows of points.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from community import pii
from community.messages import IMPORT_ROW_MESSAGES
from community.models import LEVEL_NAMES, LEVEL_RANK, ROOT_LEVELS, Department, Household, Region, User
from core.bounds import is_ascii_digits

# National codes (GB/T 2260 for counties and above, 9 digits for a township, 12 for a village or
# community); a grid's code is its parent's code and more digits.
CODE_DIGITS = {"province": 6, "city": 6, "county": 6, "township": 9, "village": 12, "community": 12}
CODE_MAX = 32
LEAF_LEVELS = ("village", "community", "grid")
LEVEL_ALIASES = {
    **{level: level for level in LEVEL_RANK},
    **{name: level for level, name in LEVEL_NAMES.items()},
    "省份": "province",
    "县": "county",
    "区": "county",
    "县区": "county",
    "乡": "township",
    "镇": "township",
    "乡镇": "township",
    "街道": "township",
    "村委会": "village",
    "居委会": "community",
}
HOUSEHOLD_NUMBER = re.compile(r"^[0-9A-Za-z_-]{1,32}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ERRORS = 5000


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
        parent = aliased(Region)
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


def significant(code: str) -> str:
    """The part of a parent's code its children start with: a national 6-digit code without
    its trailing zero pairs (430000 → 43, 430900 → 4309), any other code whole."""
    if len(code) == 6 and is_ascii_digits(code):
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def code_rule(code: str, level: str) -> str | None:
    """Why `code` cannot be the code of a region of `level`, or None."""
    name = LEVEL_NAMES[level]
    if level == "grid":
        if not (is_ascii_digits(code) and len(code) <= CODE_MAX):
            return f"网格编码须为不超过 {CODE_MAX} 位的数字"
        return None
    if not (is_ascii_digits(code) and len(code) == CODE_DIGITS[level]):
        return f"{name}级编码须为 {CODE_DIGITS[level]} 位数字"
    if level == "province" and not code.endswith("0000"):
        return "省级编码后四位须为 0000"
    if level == "city" and (code.endswith("0000") or not code.endswith("00")):
        return "市级编码后两位须为 00（后四位不为 0000）"
    if level == "county" and code.endswith("00"):
        return "县级编码后两位不能为 00"
    return None


class Importer:
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

    def check(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def write(self) -> None:
        """Write what the last `check` decided (only called while the file has no error)."""
        raise NotImplementedError


def _insert(session: Session, model: Any, rows: list[dict[str, Any]], *, ids: bool = False) -> list[int]:
    """INSERT `rows` in one executemany (Core, not the ORM: no objects, no identity map); with
    `ids`, the new ids in the order of `rows`."""
    if not rows:
        return []
    table = model.__table__
    if not ids:
        session.execute(table.insert(), rows)
        return []
    return list(session.scalars(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows))


def _update(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.update(model), rows)


class RegionImporter(Importer):
    kind = "regions"
    required = ("编码", "名称", "层级", "上级编码")

    def check(self, rows: list[Row]) -> None:
        self.regions.load(c for row in rows for c in (row["编码"], row["上级编码"]))
        self.creates: list[Place] = []
        self.renames: list[dict[str, Any]] = []
        for row in rows:
            self._check(row)

    def _check(self, row: Row) -> None:
        code, parent_code = row["编码"], row["上级编码"]
        name = self.text(row, "名称", 64)
        level = LEVEL_ALIASES.get(row["层级"].replace(" ", ""))
        if not row["层级"]:
            self.fail(row, "层级", "required")
        elif level is None:
            self.fail(row, "层级", "level_invalid")
        if not code:
            self.fail(row, "编码", "required")
        elif level and (rule := code_rule(code, level)):
            self.fail(row, "编码", "code_format", rule=rule)
        elif code and not self.once(row, "编码", code):
            return
        parent = self._parent(row, code, level, parent_code)
        existing = self.regions.get(code) if code else None
        if row.bad or level is None:
            return
        if existing is not None:
            if not existing.in_scope:
                self.fail(row, "编码", "out_of_scope", value=code)
            elif existing.level != level or (existing.parent_code or "") != parent_code:
                self.fail(row, "编码", "region_conflict", value=code)
            elif existing.name != name:
                if existing.id is not None:
                    self.renames.append({"id": existing.id, "name": name})
                    existing.name = name
                self.settle(row, "updated")
            else:
                self.settle(row, "skipped")
            return
        place = Place(code, level, parent_code or None, True, name, row=row.number)
        place.depth = parent.depth + 1 if parent else 0
        self.regions.add(place)
        self.creates.append(place)
        self.settle(row, "created")

    def _parent(self, row: Row, code: str, level: str | None, parent_code: str) -> Place | None:
        if not parent_code:
            existing = self.regions.get(code)
            if existing is None and (level not in ROOT_LEVELS or not self.scope.system):
                self.fail(row, "上级编码", "parent_required")
            return None
        parent = self.regions.get(parent_code)
        if parent is None:
            self.fail(row, "上级编码", "parent_not_found", value=parent_code)
        elif not parent.in_scope:
            self.fail(row, "上级编码", "out_of_scope", value=parent_code)
        elif level and LEVEL_RANK[level] <= LEVEL_RANK[parent.level]:
            self.fail(row, "层级", "level_order", level=LEVEL_NAMES[level], parent_level=LEVEL_NAMES[parent.level])
        elif code and level and not row.bad:
            prefix = significant(parent_code)
            if not code.startswith(prefix) or (level == "grid" and len(code) <= len(prefix)):
                self.fail(row, "编码", "code_parent_mismatch", value=code, parent=parent_code)
        return parent

    def write(self) -> None:
        _update(self.session, Region, self.renames)
        # A row's parent is in the database or created by an earlier row: write generation by
        # generation, so every parent has its id (and path) before its children are inserted.
        waiting = self.creates
        while waiting:
            ready = [p for p in waiting if p.parent_code is None or self.regions.get(p.parent_code).id is not None]
            waiting = [p for p in waiting if p not in ready] if len(ready) < len(waiting) else []
            values = []
            for place in ready:
                parent = self.regions.get(place.parent_code) if place.parent_code else None
                values.append(
                    {
                        "code": place.code,
                        "name": place.name,
                        "level": place.level,
                        "parent_id": parent.id if parent else None,
                        "path": "/",
                        "depth": place.depth,
                        "created_at": self.now,
                    }
                )
            ids = _insert(self.session, Region, values, ids=True)
            paths = []
            for place, rid in zip(ready, ids, strict=True):
                parent = self.regions.get(place.parent_code) if place.parent_code else None
                place.id, place.path = rid, f"{parent.path if parent else '/'}{rid}/"
                paths.append({"id": rid, "path": place.path})
            _update(self.session, Region, paths)


class DepartmentImporter(Importer):
    kind = "departments"
    required = ("名称", "地区编码")

    def check(self, rows: list[Row]) -> None:
        self.regions.load(row["地区编码"] for row in rows)
        names = {row["名称"] for row in rows}
        region_ids = {p.id for row in rows if (p := self.regions.get(row["地区编码"])) and p.id}
        existing = (
            set(
                self.session.execute(
                    sa.select(Department.region_id, Department.name).where(
                        Department.region_id.in_(region_ids), Department.name.in_(names)
                    )
                ).tuples()
            )
            if region_ids
            else set()
        )
        self.creates: list[dict[str, Any]] = []
        for row in rows:
            name = self.text(row, "名称", 64)
            code = row["地区编码"]
            place = self.regions.get(code) if code else None
            if not code:
                self.fail(row, "地区编码", "required")
            elif place is None:
                self.fail(row, "地区编码", "region_not_found", value=code)
            elif not place.in_scope:
                self.fail(row, "地区编码", "out_of_scope", value=code)
            if row.bad or not self.once(row, "名称", (code, name)):
                continue
            if (place.id, name) in existing:
                self.settle(row, "skipped")
            else:
                self.creates.append({"name": name, "region_id": place.id, "created_at": self.now})
                self.settle(row, "created")

    def write(self) -> None:
        _insert(self.session, Department, self.creates)


class HouseholdImporter(Importer):
    kind = "households"
    required = ("户号", "网格编码", "户主姓名")

    def check(self, rows: list[Row]) -> None:
        self.regions.load(row["网格编码"] for row in rows)
        found = households(self.session, [row["户号"] for row in rows])
        self.creates: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        for row in rows:
            number = row["户号"]
            head = self.text(row, "户主姓名", 32)
            place = self.leaf_region(row, "网格编码")
            if not number:
                self.fail(row, "户号", "required")
            elif not HOUSEHOLD_NUMBER.match(number):
                self.fail(row, "户号", "household_format")
            elif not self.once(row, "户号", number):
                continue
            if row.bad:
                continue
            existing = found.get(number)
            if existing is None:
                self.creates.append(
                    {"number": number, "region_id": place.id, "head_name": head, "created_at": self.now}
                )
                self.settle(row, "created")
            elif not self.scope.covers(existing["path"]):
                self.fail(row, "户号", "out_of_scope", value=number)
            elif existing["region_id"] != place.id:
                self.fail(row, "户号", "household_elsewhere", value=number)
            elif existing["head_name"] != head:
                self.changes.append({"id": existing["id"], "head_name": head})
                self.settle(row, "updated")
            else:
                self.settle(row, "skipped")

    def write(self) -> None:
        _insert(self.session, Household, self.creates)
        _update(self.session, Household, self.changes)


def households(session: Session, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """The households with these numbers, with their region's path (for scope and grid checks)."""
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(Household.id, Household.number, Household.region_id, Household.head_name, Region.path)
        .join(Region, Household.region_id == Region.id)
        .where(Household.number.in_(wanted))
    ).mappings()
    return {row["number"]: dict(row) for row in rows}


class ResidentImporter(Importer):
    kind = "residents"
    required = ("姓名", "手机号", "网格编码")
    optional = ("身份证号", "户号")

    def check(self, rows: list[Row]) -> None:
        self.regions.load(row["网格编码"] for row in rows)
        self.homes = households(self.session, [row["户号"] for row in rows])
        digests: dict[int, str] = {}
        for row in rows:
            raw = pii.normalize_id_number(row["身份证号"])
            if not raw:
                continue
            if problem := pii.id_number_problem(raw):
                self.fail(row, "身份证号", "id_number_invalid", problem=problem)
            else:
                digests[row.number] = pii.id_digest(raw)
                row.cells["身份证号"] = raw
        phones = [row["手机号"] for row in rows if pii.PHONE.match(row["手机号"])]
        people = self._people(User.phone.in_(phones)) if phones else {}
        holders = (
            {
                p["id_number_digest"]: p["phone"]
                for p in self._people(User.id_number_digest.in_(set(digests.values()))).values()
            }
            if digests
            else {}
        )
        self.creates: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        for row in rows:
            self._check(row, people, holders, digests.get(row.number))

    def _people(self, where: Any) -> dict[str, dict[str, Any]]:
        rows = self.session.execute(
            sa.select(
                User.id, User.phone, User.name, User.region_id, User.household_id, User.id_number_digest, Region.path
            )
            .join(Region, User.region_id == Region.id)
            .where(where)
        ).mappings()
        return {row["phone"]: dict(row) for row in rows}

    def _check(self, row: Row, people: dict, holders: dict, digest: str | None) -> None:
        name = self.text(row, "姓名", 32)
        phone = row["手机号"]
        if not phone:
            self.fail(row, "手机号", "required")
        elif not pii.PHONE.match(phone):
            self.fail(row, "手机号", "phone_format")
        place = self.leaf_region(row, "网格编码")
        number = row["户号"]
        home = self.homes.get(number) if number else None
        if number and home is None:
            self.fail(row, "户号", "household_not_found", value=number)
        elif home is not None and place is not None and not place.path.startswith(home["path"]):
            self.fail(row, "户号", "household_elsewhere", value=number)
        if phone and not row.bad and not self.once(row, "手机号", phone):
            return
        if digest and not row.bad and not self.once(row, "身份证号", ("id", digest)):
            return
        if row.bad:
            return
        person = people.get(phone)
        if digest and holders.get(digest, phone) != phone:
            self.fail(row, "身份证号", "id_number_taken")
            return
        wanted = {"region_id": place.id, "household_id": home["id"] if home else None}
        if person is None:
            masked = pii.mask_id(row["身份证号"]) if digest else None
            self.creates.append(
                {
                    "phone": phone,
                    "name": name,
                    "password_hash": "",
                    "region_id": place.id,
                    "household_id": wanted["household_id"],
                    "id_number_digest": digest,
                    "id_number_masked": masked,
                    "created_at": self.now,
                }
            )
            self.settle(row, "created")
            return
        if not self.scope.covers(person["path"]):
            self.fail(row, "手机号", "out_of_scope", value=pii.mask_phone(phone))
        elif person["name"] != name:
            self.fail(row, "姓名", "name_mismatch", value=pii.mask_phone(phone))
        elif digest and person["id_number_digest"] not in (None, digest):
            self.fail(row, "身份证号", "id_number_mismatch")
        if row.bad:
            return
        if not home:
            wanted.pop("household_id")  # a row without 户号 leaves the household as it is
        if digest and person["id_number_digest"] is None:
            wanted.update(id_number_digest=digest, id_number_masked=pii.mask_id(row["身份证号"]))
        change = {k: v for k, v in wanted.items() if person.get(k) != v}
        if change:
            self.changes.append({"id": person["id"], **change})
            self.settle(row, "updated")
        else:
            self.settle(row, "skipped")

    def write(self) -> None:
        if self.creates:
            ids = _insert(self.session, User, self.creates, ids=True)
            # The volunteer number is the public identifier, as at sign-up (accounts.register).
            _update(self.session, User, [{"id": i, "volunteer_no": f"ZY{i:08d}"} for i in ids])
        _update(self.session, User, self.changes)


KINDS: dict[str, type[Importer]] = {
    cls.kind: cls for cls in (RegionImporter, DepartmentImporter, HouseholdImporter, ResidentImporter)
}
