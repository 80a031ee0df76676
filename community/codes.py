"""The personal code (会员码): a signed, short-lived QR payload that identifies a resident.

`MC1.<user id>.<minute step>.<signature>`: upper-case letters, digits and dots only, so that it
fits QR alphanumeric mode and a keyboard-wedge scanner types it faithfully. The signature is an
HMAC over the user, their token version (a password change voids old codes) and the step. A code
changes every minute and is accepted one step either side (clock skew), then refused.

The printed card (会员卡) of a resident without a phone is another thing: `MK1.<user id>.<serial>.
<signature>`, long-lived, signed with a key of its own over the user and the card's serial. It is
valid while its serial is the one stored for the resident; issuing a new card (lost, worn, handed
to the wrong person) raises the serial and so voids every card printed before. A password change
does not touch it: the card does not depend on the phone account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app

from core.bounds import parse_int
from core.errors import Invalid
from core.security import derived_key

PREFIX = "MC1"
CARD_PREFIX = "MK1"


def _step(now: datetime) -> int:
    return int(now.timestamp()) // current_app.config["PERSONAL_CODE_STEP_SECONDS"]


def _signature(user_id: int, version: int, step: int) -> str:
    mac = hmac.new(derived_key("personal-code"), f"{user_id}.{version}.{step}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:10]).decode()


def issue(user_id: int, version: int, now: datetime) -> tuple[str, datetime]:
    """The code to show now, and when it stops being accepted."""
    step = _step(now)
    seconds = current_app.config["PERSONAL_CODE_STEP_SECONDS"]
    skew = current_app.config["PERSONAL_CODE_SKEW_STEPS"]
    expires = datetime.fromtimestamp((step + 1 + skew) * seconds, UTC)
    return f"{PREFIX}.{user_id}.{step}.{_signature(user_id, version, step)}", expires


def parse(code: str) -> tuple[int, int, str]:
    """Split a code into (user id, step, signature) or raise Invalid('code_invalid')."""
    parts = code.strip().upper().split(".")
    # compare_digest refuses (TypeError) a str with non-ASCII characters: such a code is simply invalid.
    if len(parts) != 4 or parts[0] != PREFIX or not parts[3].isascii():
        raise Invalid("code_invalid")
    try:
        return parse_int(parts[1], minimum=1), parse_int(parts[2], minimum=0, maximum=10**15), parts[3]
    except ValueError:
        raise Invalid("code_invalid") from None


def verify(code: str, now: datetime, lookup: Callable[[int], int | None]) -> int:
    """Return the user id of a valid code, or raise Invalid('code_invalid' | 'code_expired').

    `lookup(user_id)` gives the signer's current token version, or None for no such active user.
    """
    user_id, step, signature = parse(code)
    version = lookup(user_id)
    if version is None or not hmac.compare_digest(signature, _signature(user_id, version, step)):
        raise Invalid("code_invalid")
    skew = current_app.config["PERSONAL_CODE_SKEW_STEPS"]
    if abs(_step(now) - step) > skew:
        raise Invalid("code_expired")
    return user_id


def _card_signature(user_id: int, serial: int) -> str:
    # 120 bits: a card lives for years, so it carries a longer signature than the minute's code.
    mac = hmac.new(derived_key("resident-card"), f"{user_id}.{serial}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:15]).decode()


def card(user_id: int, serial: int) -> str:
    """The payload printed on card number `serial` of the resident."""
    return f"{CARD_PREFIX}.{user_id}.{serial}.{_card_signature(user_id, serial)}"


def is_card(code: str) -> bool:
    return code.strip().upper().startswith(CARD_PREFIX + ".")


def verify_card(code: str, lookup: Callable[[int], int | None]) -> int:
    """Return the user id of a valid card, or raise Invalid('card_invalid' | 'card_revoked').

    `lookup(user_id)` gives the serial of the resident's current card, or None for no such active
    user or no card. A genuine card with an older serial was replaced: 'card_revoked' says so."""
    parts = code.strip().upper().split(".")
    if len(parts) != 4 or parts[0] != CARD_PREFIX or not parts[3].isascii():
        raise Invalid("card_invalid")
    try:
        user_id, serial = parse_int(parts[1], minimum=1), parse_int(parts[2], minimum=1)
    except ValueError:
        raise Invalid("card_invalid") from None
    if not hmac.compare_digest(parts[3], _card_signature(user_id, serial)):
        raise Invalid("card_invalid")
    current = lookup(user_id)
    if current is None:
        raise Invalid("card_invalid")
    if current != serial:
        raise Invalid("card_revoked")
    return user_id
