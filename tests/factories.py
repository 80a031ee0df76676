"""Factories: valid objects in one line, through the real services (so audit and rules apply)."""

from __future__ import annotations

import io
import itertools
from datetime import datetime

from community import accounts, services
from community.models import Department, Region, User
from core.db import utcnow

PASSWORD = "Passw0rd!"
_phones = itertools.count(1)


def next_phone() -> str:
    return f"139{next(_phones) + 10_000_000:08d}"[:11]


def region(code: str, name: str | None = None, level: str = "county", parent: str | None = None) -> Region:
    return services.create_region(
        actor=None, code=code, name=name or f"地区{code}", level=level, parent_code=parent, now=utcnow()
    )


def department(name: str, region_code: str) -> Department:
    return services.create_department(actor=None, name=name, region_code=region_code, now=utcnow())


def user(
    region_code: str,
    *,
    name: str = "张三",
    phone: str | None = None,
    password: str = PASSWORD,
    now: datetime | None = None,
    **extra,
) -> User:
    return accounts.register(
        phone=phone or next_phone(), name=name, password=password, region_code=region_code, now=now or utcnow(), **extra
    )


def grant(who: User, role: str, scope_type: str, scope_id) -> User:
    services.grant_role(actor=None, user_id=who.id, role=role, scope_type=scope_type, scope_id=scope_id, now=utcnow())
    return who


def token(who: User) -> str:
    value, _ = accounts.api_token(who, utcnow())
    return value


def bearer(who: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(who)}"}


def fund(who: User, points: int, *, key: str | None = None, department_id: int | None = None) -> None:
    """Give a resident points the way the app does (a region issuer credit through the ledger)."""
    from core.db import unit_of_work
    from points import ledger

    with unit_of_work() as session:
        ledger.transfer(
            session,
            source=ledger.issuer_account(session, "region", who.region_id),
            target=ledger.resident_account(session, who.id),
            amount=points,
            kind="adjustment",
            key=key or f"fund:{who.id}:{next(_phones)}",
            now=utcnow(),
        )


def picture(width: int = 64, height: int = 48, fmt: str = "JPEG", *, exif=None) -> bytes:
    """A small picture as an upload would bring it (a phone photo is a JPEG with EXIF)."""
    from PIL import Image

    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 30, 40))
    image.paste((255, 255, 255), (0, 0, width // 2, height // 4))  # a white band: which way is up
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def fresh() -> None:
    """See what other sessions (requests, threads, processes) committed: end the test's read
    transaction and forget what it loaded (commits do not expire objects in this app)."""
    from core.db import db

    db.session.rollback()
    db.session.expire_all()
