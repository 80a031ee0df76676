"""Venue codes: what the QR at the venue holds.

A live screen shows a code that rotates every 30 seconds: an HMAC of the activity's own secret and
the time step; the current and the previous step are accepted. A printed poster holds a static code
valid only within the activity window (plus grace). Codes are `A<activity>.<step or P>.<signature>`
and travel inside a URL that a phone camera or WeChat opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from core.bounds import is_ascii_digits, parse_int
from core.errors import Invalid
from core.security import derived_key
from volunteer.messages import VENUE_CODE
from volunteer.models import Activity

STEP_SECONDS = 30
# Check-in opens an hour before the start and closes two hours after the end.
OPEN_BEFORE = timedelta(hours=1)
CLOSE_AFTER = timedelta(hours=2)


def refused(code: str) -> Invalid:
    """A venue code refused (422), titled as a QR code, not as a sign-in token."""
    return Invalid(code, title=VENUE_CODE[code])


def _sign(activity: Activity, payload: str) -> str:
    key = hmac.new(derived_key("venue-code"), activity.secret.encode(), hashlib.sha256).digest()
    return base64.b32encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:10]).decode()


def step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def rotating(activity: Activity, now: datetime) -> tuple[str, datetime]:
    s = step(now)
    token = f"A{activity.id}.{s}.{_sign(activity, f'{activity.id}:{s}')}"
    return token, datetime.fromtimestamp((s + 2) * STEP_SECONDS, UTC)


def poster(activity: Activity) -> tuple[str, datetime]:
    return f"A{activity.id}.P.{_sign(activity, f'{activity.id}:poster')}", activity.ends_at + CLOSE_AFTER


def activity_id(token: str) -> int:
    head = (token or "").strip().split(".")[0]
    if not head.startswith("A"):
        raise refused("token_invalid")
    try:
        return parse_int(head[1:], minimum=1)
    except ValueError:
        raise refused("token_invalid") from None


def verify(token: str, activity: Activity, now: datetime) -> None:
    """Raise unless `token` is a current code of `activity` and now is within its check-in window."""
    parts = (token or "").strip().split(".")
    # compare_digest refuses (TypeError) a str with non-ASCII characters: such a token is simply invalid.
    if len(parts) != 3 or parts[0] != f"A{activity.id}" or not parts[2].isascii():
        raise refused("token_invalid")
    kind, signature = parts[1], parts[2]
    if kind == "P":
        valid = hmac.compare_digest(signature, _sign(activity, f"{activity.id}:poster"))
    elif is_ascii_digits(kind):
        valid = hmac.compare_digest(signature, _sign(activity, f"{activity.id}:{kind}"))
        if valid and step(now) - int(kind) not in (0, 1):
            raise refused("token_expired")
    else:
        valid = False
    if not valid:
        raise refused("token_invalid")
    require_window(activity, now)


def require_window(activity: Activity, now: datetime) -> None:
    """Check-in and check-out, by any means, only from an hour before the start to two after the end."""
    if not (activity.starts_at - OPEN_BEFORE <= now <= activity.ends_at + CLOSE_AFTER):
        raise Invalid("token_out_of_window")
