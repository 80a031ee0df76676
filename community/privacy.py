"""Residents' rights over their personal information (PIPL; DESIGN §7, §8): their own data as one
document to take away (`export`, and `workbook` for the .xlsx), and closing the account (`close`).

People and places know nothing of activities, points or stores, so each domain wired in adds to an
app what it holds of a resident (`add_export_section`), what must be settled before an account may
close (`add_closure_check`) and what closing does to its own rows (`add_closure_step`); this module
anonymizes the person. Closing never edits a record: sign-ups, attendances, transfers and archive
entries name the resident by id, never by name, so they stay as they were (the archive's hash chain
verifies as before) and, once the name, phone and ID number are gone, belong to a pseudonym.

What is refused, and why (a real office's rules): a closure while the resident is checked in
somewhere (check out first) or has a make-up waiting for a reviewer (its outcome is theirs to see),
and while they hold a staff role (an admin revokes it: staff accounts answer for their actions).
Pending deeds and adjustments do not hold a closure up: they post to the pseudonym like any record.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from community.models import ROLE_NAMES, LoginAttempt, RecoveryCode, User
from core import audit, clock
from core.db import db, unit_of_work
from core.errors import Conflict, Invalid
from core.notify import Notification
from core.security import verify_password

EXTENSION = "community.privacy"
PSEUDONYM = "已注销用户-{id}"
# No password hashes to this (werkzeug's check refuses it): a closed account can never sign in.
UNUSABLE_PASSWORD = "!closed"

Reader = Callable[[Session, User], list[dict[str, Any]]]
Check = Callable[[Session, User, datetime], None]
Step = Callable[[Session, User, datetime], None]


@dataclass
class _Hooks:
    sections: list[tuple[str, str, Reader]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def _hooks(app: Flask | None = None) -> _Hooks:
    return (app or current_app).extensions.setdefault(EXTENSION, _Hooks())


def add_export_section(app: Flask, name: str, title: str, reader: Reader) -> None:
    """A domain's part of the export: `reader(session, user)` gives its rows (plain JSON values),
    shown as the sheet `title` in the .xlsx."""
    _hooks(app).sections.append((name, title, reader))


def add_closure_check(app: Flask, check: Check) -> None:
    """`check(session, user, now)` raises a Conflict (with a reason the resident can act on) while
    something of theirs in the domain must be settled before the account can close."""
    _hooks(app).checks.append(check)


def add_closure_step(app: Flask, step: Step) -> None:
    """`step(session, user, now)` runs in the closure's unit of work (e.g. cancel future sign-ups)."""
    _hooks(app).steps.append(step)


# Export ------------------------------------------------------------------------------------------


def profile(user: User) -> dict[str, Any]:
    """What the people domain holds of the resident (the ID number only masked: it is never stored
    in clear)."""
    return {
        "id": user.id,
        "name": user.name,
        "phone": user.phone,
        "volunteer_no": user.volunteer_no,
        "id_number": user.id_number_masked,
        "region_code": user.region.code,
        "region": user.region.name,
        "household": user.household.number if user.household is not None else None,
        "consent_public_name": user.consent_public_name,
        "guardian_consent": user.guardian_consent,
        "has_card": bool(user.card_serial),
        "roles": [
            {"role": g.role, "name": ROLE_NAMES.get(g.role, g.role), "scope_type": g.scope_type} for g in user.grants
        ],
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
        "password_changed_at": user.password_changed_at,
    }


def _notifications(session: Session, user: User) -> list[dict[str, Any]]:
    rows = session.scalars(sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))
    return [{"kind": n.kind, "title": n.title, "body": n.body, "created_at": n.created_at} for n in rows]


def sections(app: Flask | None = None) -> list[tuple[str, str, Reader]]:
    return [("notifications", "消息", _notifications), *_hooks(app).sections]


def export(user: User, *, now: datetime) -> dict[str, Any]:
    """The resident's own data, as JSON values: profile, then every domain's section."""
    document: dict[str, Any] = {"exported_at": now, "profile": profile(user)}
    for name, _title, reader in sections():
        document[name] = reader(db.session, user)
    return _plain(document)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.local(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


PROFILE_LABELS = {
    "id": "用户编号",
    "name": "姓名",
    "phone": "手机号",
    "volunteer_no": "志愿者编号",
    "id_number": "身份证号（遮挡）",
    "region_code": "地区编码",
    "region": "所在地区",
    "household": "户号",
    "consent_public_name": "同意公开姓名",
    "guardian_consent": "监护人同意",
    "has_card": "已发会员卡",
    "roles": "工作角色",
    "created_at": "注册时间",
    "last_login_at": "最近登录",
    "password_changed_at": "最近修改密码",
}


def workbook(document: dict[str, Any]) -> bytes:
    """The export as an .xlsx: the profile on its first sheet, one sheet per section."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "个人信息"
    sheet.append(["项目", "内容"])
    for key, value in document["profile"].items():
        if key == "roles":
            value = "、".join(r["name"] for r in value) or "无"
        sheet.append([PROFILE_LABELS.get(key, key), _cell(value)])
    sheet.append(["导出时间", document["exported_at"]])
    for name, title, _reader in sections():
        sheet = book.create_sheet(title[:31])
        rows = document.get(name) or []
        if not rows:
            sheet.append(["（无记录）"])
            continue
        columns = list(rows[0])
        sheet.append(columns)
        for row in rows:
            sheet.append([_cell(row.get(c)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        # A text cell that starts like a formula stays text (CSV/formula injection).
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
            return "'" + value
        return value
    return str(value)


# Closing the account -----------------------------------------------------------------------------


def close(*, user: User, password: str, now: datetime) -> User:
    """Close the resident's own account: their password again, nothing open, no staff role. Then the
    domains' steps, and the person anonymized: pseudonym, phone and ID number gone, password
    unusable, every token, session and card void, their inbox and sign-in records deleted."""
    if not verify_password(user.password_hash, password or ""):
        raise Invalid("password_incorrect", errors={"password": ["密码不正确"]})
    with unit_of_work() as session:
        user = session.get(User, user.id, with_for_update=True, populate_existing=True)
        if user.closed_at is not None or not user.active:
            raise Conflict("account_closed")
        if user.grants:
            raise Conflict("close_has_roles")
        for check in _hooks().checks:
            check(session, user, now)
        for step in _hooks().steps:
            step(session, user, now)
        phone = user.phone
        user.name = PSEUDONYM.format(id=user.id)
        user.phone = f"closed-{user.id}"  # unique, and never a phone number anyone can sign in with
        user.id_number_digest = user.id_number_masked = None
        user.password_hash = UNUSABLE_PASSWORD
        user.token_version += 1
        user.active = False
        user.card_serial = None
        user.household_id = None
        user.consent_public_name = user.guardian_consent = False
        user.failed_logins, user.locked_until, user.failures_reset_at = 0, None, None
        user.totp_secret = user.totp_pending = user.totp_enabled_at = user.totp_last_step = None
        user.closed_at = now
        session.execute(sa.delete(LoginAttempt).where(LoginAttempt.phone == phone))
        session.execute(sa.delete(Notification).where(Notification.user_id == user.id))
        session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        # After the change: the entry names the pseudonym, and keeps nothing of the person.
        audit.record(
            "user.close",
            "user",
            user.id,
            actor=user,
            after={"name": user.name, "closed_at": now},
            region_id=user.region_id,
            now=now,
        )
    return user
