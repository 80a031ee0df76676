"""Personal information: validating, masking and digesting phone and ID numbers (DESIGN §7, §8).

ID numbers are never stored in clear: a keyed digest checks uniqueness, a masked form (前3后4) is
shown. Phone numbers are shown masked except to the person and the admins of their region.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import date

from flask import current_app

from core.security import derived_key, keyed_digest

# ASCII digits only, to the very end: "１３９…" (full-width) or a trailing newline would be another
# spelling of the same number and slip past the uniqueness of phones and ID numbers.
PHONE = re.compile(r"^1[3-9][0-9]{9}\Z")
_ID18 = re.compile(r"^[0-9]{17}[0-9X]\Z")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def normalize_id_number(value: str) -> str:
    return value.strip().upper()


def id_number_problem(value: str) -> str | None:
    """Why an 18-digit resident ID number (GB 11643) is invalid, or None."""
    if not _ID18.match(value):
        return "身份证号应为 18 位"
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    if _CHECK[total % 11] != value[17]:
        return "身份证号校验位不正确"
    if birth_date(value) is None:
        return "身份证号中的出生日期不正确"
    return None


def birth_date(id_number: str) -> date | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def id_digest(id_number: str) -> str:
    """A keyed digest: equal ID numbers give equal digests, and nobody can reverse one."""
    pii_key = current_app.config.get("PII_KEY")
    if pii_key:
        return hmac.new(pii_key.encode(), id_number.encode(), hashlib.sha256).hexdigest()
    return keyed_digest("id-number", id_number)


def id_digester() -> Callable[[str], str]:
    """`id_digest` with its key derived once (an import digests a hundred thousand numbers)."""
    pii_key = current_app.config.get("PII_KEY")
    key = pii_key.encode() if pii_key else derived_key("id-number")
    return lambda id_number: hmac.new(key, id_number.encode(), hashlib.sha256).hexdigest()


def mask_id(id_number: str) -> str:
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳修文 → 欧***: the surname stays, the rest is hidden."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else name
