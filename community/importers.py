"""The four kinds of rows an office imports (regions, departments, households, residents): how a
row is checked, and how a batch of checked rows is written. `community.imports` runs them.

Each kind checks a batch of rows at once: it looks up, in one query per batch, the rows that
already exist (by region code, department name, household number, phone, ID digest), then
decides for each row: create, update, skip (already as the file says) or refuse (an error with
its row, column, stable code and Chinese text). Writes are bulk statements per batch inside the
caller's unit of work; nothing here commits, and nothing here knows of points.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from community import pii
from community.importing import Importer, Place, Row, insert_rows, update_rows
from community.models import LEVEL_NAMES, LEVEL_RANK, ROOT_LEVELS, Department, Household, Region, User
from core.bounds import is_ascii_digits

CODE_DIGITS = {"province": 6, "city": 6, "county": 6, "township": 9, "village": 12, "community": 12}
CODE_MAX = 32
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
        update_rows(self.session, Region, self.renames)
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
            ids = insert_rows(self.session, Region, values, ids=True)
            paths = []
            for place, rid in zip(ready, ids, strict=True):
                parent = self.regions.get(place.parent_code) if place.parent_code else None
                place.id, place.path = rid, f"{parent.path if parent else '/'}{rid}/"
                paths.append({"id": rid, "path": place.path})
            update_rows(self.session, Region, paths)


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
        insert_rows(self.session, Department, self.creates)


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
        insert_rows(self.session, Household, self.creates)
        update_rows(self.session, Household, self.changes)


def households(session: Session, numbers: list[str]) -> dict[str, dict[str, Any]]:
    """The households with these numbers, with their region's path (for scope and grid checks)."""
    wanted = sorted({n for n in numbers if n})
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(Household.id, Household.number, Household.region_id, Household.head_name, Region.path)
        .join(Region, Household.region_id == Region.id)
        .where(Household.number.in_(wanted))
    ).tuples()
    return {n: {"id": i, "region_id": r, "head_name": h, "path": p} for i, n, r, h, p in rows}


class ResidentImporter(Importer):
    kind = "residents"
    required = ("姓名", "手机号", "网格编码")
    optional = ("身份证号", "户号")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.digest = pii.id_digester()

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
                digests[row.number] = self.digest(raw)
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
        # Compact keys (an int, 16 bytes): the index of what earlier rows held grows with the file.
        if phone and not row.bad and not self.once(row, "手机号", int(phone)):
            return
        if digest and not row.bad and not self.once(row, "身份证号", bytes.fromhex(digest[:32])):
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
            # The volunteer number is the public identifier, "ZY" and the id in 8 digits or more,
            # as at sign-up (accounts.register): with the ids taken first, one INSERT writes both.
            for row, user_id in zip(self.creates, _new_ids(self.session, len(self.creates)), strict=True):
                row.update(id=user_id, volunteer_no=f"ZY{user_id:08d}")
            insert_rows(self.session, User, self.creates)
        update_rows(self.session, User, self.changes)


def _new_ids(session: Session, count: int) -> list[int]:
    """`count` fresh ids for users: from the table's sequence on PostgreSQL (as an INSERT would
    take them); on SQLite after the largest id, which is safe because the unit of work holds the
    database's write lock (BEGIN IMMEDIATE) until it commits."""
    if session.get_bind().dialect.name == "sqlite":
        last = session.scalar(sa.select(sa.func.max(User.id))) or 0
        return list(range(last + 1, last + 1 + count))
    taken = sa.text("SELECT nextval(pg_get_serial_sequence('users', 'id')) FROM generate_series(1, :n)")
    return list(session.scalars(taken, {"n": count}))


KINDS: dict[str, type[Importer]] = {
    cls.kind: cls for cls in (RegionImporter, DepartmentImporter, HouseholdImporter, ResidentImporter)
}
